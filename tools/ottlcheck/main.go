// Command ottlcheck is the oracle for linkmesh's OTTL and regex checks: for each JSON case on stdin
// it answers whether the OpenTelemetry Collector's own Go code accepts the text at config load time.
//
// Conditions are loaded into a filter processor config and statements into a transform processor
// config, then validated the way the collector validates them at startup (the processor's
// Unmarshal, then xconfmap.Validate), so the function set, the path set of each context and the
// parser options are the processors' own. Regexes go through Go's regexp.Compile (RE2), which is
// what IsMatch, replace_pattern and the other OTTL regex functions call.
//
// Usage:
//
//	ottlcheck < cases.jsonl > verdicts.jsonl
//
// Input, one case a line: {"kind": "condition"|"statement"|"regex", "context": "log"|..., "text": "..."}.
// Output, one line a case, in order: {"ok": true} or {"ok": false, "error": "..."}.
// Exit status: 0 when every line was answered (refusals included), 2 on unreadable input.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	exitOK    = 0
	exitUsage = 2
)

// A case as the differential test writes it; Context is ignored for regexes.
type checkCase struct {
	Kind    string `json:"kind"`
	Context string `json:"context"`
	Text    string `json:"text"`
}

type verdict struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: ottlcheck < cases.jsonl (one JSON case a line; see README.md)")
		return exitUsage
	}
	writer := bufio.NewWriter(stdout)
	defer writer.Flush()
	encoder := json.NewEncoder(writer)
	encoder.SetEscapeHTML(false)
	scanner := bufio.NewScanner(stdin)
	scanner.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	lineNumber := 0
	for scanner.Scan() {
		lineNumber++
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		var input checkCase
		decoder := json.NewDecoder(strings.NewReader(line))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(&input); err != nil {
			fmt.Fprintf(stderr, "line %d: not a case: %v\n", lineNumber, err)
			return exitUsage
		}
		if err := encoder.Encode(verdictFor(checkText(input))); err != nil {
			fmt.Fprintf(stderr, "writing verdict: %v\n", err)
			return exitUsage
		}
		// The differential test drives this interactively, one case at a time.
		if err := writer.Flush(); err != nil {
			fmt.Fprintf(stderr, "writing verdict: %v\n", err)
			return exitUsage
		}
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintf(stderr, "reading cases: %v\n", err)
		return exitUsage
	}
	return exitOK
}

func verdictFor(err error) verdict {
	if err != nil {
		return verdict{OK: false, Error: err.Error()}
	}
	return verdict{OK: true}
}

var errUnknownKind = errors.New(`unknown kind (want "condition", "statement" or "regex")`)

// checkText turns a panic in upstream code into a refusal: the collector would not have loaded
// that config either, and the differential test must go on to the next case.
func checkText(input checkCase) (err error) {
	defer func() {
		if recovered := recover(); recovered != nil {
			err = fmt.Errorf("panic while loading: %v", recovered)
		}
	}()
	switch input.Kind {
	case "condition":
		return checkFilterCondition(input.Context, input.Text)
	case "statement":
		return checkTransformStatement(input.Context, input.Text)
	case "regex":
		return checkRegex(input.Text)
	default:
		return fmt.Errorf("%w: %q", errUnknownKind, input.Kind)
	}
}
