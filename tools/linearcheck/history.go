package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// record is one JSON line as the chaos test writes it. Pointer and raw fields
// let parse tell a missing key from a zero value: a history that silently
// lost its call time would otherwise check as if everything happened at 0.
type record struct {
	Collector *string         `json:"collector"`
	Client    *int            `json:"client"`
	Op        *string         `json:"op"`
	Token     *string         `json:"token"`
	Call      *int64          `json:"call"`
	Return    json.RawMessage `json:"return"` // non-pointer: null arrives as "null", missing as empty
	Outcome   *string         `json:"outcome"`
	Node      *string         `json:"node"`
}

// op is one parsed history line.
type op struct {
	Line      int
	Collector string
	Client    int
	Kind      string
	Token     string // "" when the line's token is null
	Call      int64
	Return    int64 // meaningful only when !Pending
	Pending   bool
	Outcome   string
	Node      string
}

// outcomes lists, per operation kind, the outcomes the model gives a meaning to.
// Anything else is a recorder bug, reported as bad input rather than guessed at.
var outcomes = map[string][]string{
	"create": {"ok", "unknown"},
	"poll":   {"accepted", "refused", "unknown"},
	"rotate": {"ok", "not_found", "unknown"},
	"delete": {"ok", "not_found", "unknown"},
}

var kinds = []string{"create", "poll", "rotate", "delete"}

// inputError is bad input (exit 3); Line is 1-based, 0 when not tied to a line.
type inputError struct {
	Line int
	Msg  string
}

func (e *inputError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

func badLine(line int, format string, args ...any) error {
	return &inputError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// parseHistory reads JSON lines; blank lines are skipped.
func parseHistory(r io.Reader) ([]op, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var ops []op
	// A label names exactly one token of one collector; a second
	// create/rotate handing out the same label would make "a fresh token
	// nobody holds" ambiguous, so the recorder must not reuse labels.
	issued := map[string]map[string]int{}
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		o, err := parseLine(line, text)
		if err != nil {
			return nil, err
		}
		if o.Token != "" && (o.Kind == "create" || o.Kind == "rotate") {
			byLabel := issued[o.Collector]
			if byLabel == nil {
				byLabel = map[string]int{}
				issued[o.Collector] = byLabel
			}
			if first, dup := byLabel[o.Token]; dup {
				return nil, badLine(line, "collector %q: token label %q already issued on line %d", o.Collector, o.Token, first)
			}
			byLabel[o.Token] = line
		}
		ops = append(ops, o)
	}
	if err := sc.Err(); err != nil {
		return nil, &inputError{Line: line + 1, Msg: fmt.Sprintf("reading history: %v", err)}
	}
	return ops, nil
}

func parseLine(line int, text []byte) (op, error) {
	var rec record
	dec := json.NewDecoder(bytes.NewReader(text))
	// A misspelt key ("retrun") would otherwise read as a missing value.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return op{}, badLine(line, "malformed JSON: %v", err)
	}
	if dec.More() {
		return op{}, badLine(line, "malformed JSON: more than one value on the line")
	}
	switch {
	case rec.Collector == nil || *rec.Collector == "":
		return op{}, badLine(line, "missing collector")
	case rec.Client == nil:
		return op{}, badLine(line, "missing client")
	case *rec.Client < 0:
		return op{}, badLine(line, "client %d is negative", *rec.Client)
	case rec.Op == nil:
		return op{}, badLine(line, "missing op")
	case rec.Call == nil:
		return op{}, badLine(line, "missing call")
	case len(rec.Return) == 0:
		return op{}, badLine(line, "missing return (null marks a pending operation)")
	case rec.Outcome == nil:
		return op{}, badLine(line, "missing outcome")
	}
	o := op{
		Line:      line,
		Collector: *rec.Collector,
		Client:    *rec.Client,
		Kind:      *rec.Op,
		Call:      *rec.Call,
		Outcome:   *rec.Outcome,
	}
	if rec.Node != nil {
		o.Node = *rec.Node
	}
	allowed, known := outcomes[o.Kind]
	if !known {
		return op{}, badLine(line, "unknown op %q (want one of %s)", o.Kind, strings.Join(kinds, ", "))
	}
	if !contains(allowed, o.Outcome) {
		return op{}, badLine(line, "unknown outcome %q for %s (want one of %s)", o.Outcome, o.Kind, strings.Join(allowed, ", "))
	}
	if rec.Token != nil {
		if *rec.Token == "" {
			return op{}, badLine(line, "empty token label (use null when the client has none)")
		}
		// The HTML report and this tool's output show tokens; a real one
		// must never get there.
		if strings.HasPrefix(*rec.Token, "lmct_") {
			return op{}, badLine(line, "token looks like a real collector token; record labels (t0, t1, ...)")
		}
		o.Token = *rec.Token
	}
	if o.Token == "" && needsToken(o.Kind, o.Outcome) {
		return op{}, badLine(line, "%s %s needs a token label", o.Kind, o.Outcome)
	}
	if bytes.Equal(bytes.TrimSpace(rec.Return), []byte("null")) {
		o.Pending = true
	} else {
		var ret int64
		if err := json.Unmarshal(rec.Return, &ret); err != nil {
			return op{}, badLine(line, "return is neither null nor an integer: %v", err)
		}
		if ret < o.Call {
			return op{}, badLine(line, "return %d is before call %d", ret, o.Call)
		}
		o.Return = ret
	}
	if o.Outcome == "unknown" {
		// The operation may take effect any time after it was sent, so its
		// recorded return time (when the client gave up) bounds nothing.
		o.Pending = true
	} else if o.Pending {
		return op{}, badLine(line, "outcome %q with a null return (a pending operation has outcome \"unknown\")", o.Outcome)
	}
	return o, nil
}

func needsToken(kind, outcome string) bool {
	switch kind {
	case "poll":
		return true
	case "create", "rotate":
		return outcome == "ok"
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// summary counts operations for the report.
type summary struct {
	Collectors []string // in order of first appearance
	Counts     map[string]map[string]int
	Pending    int
}

func summarize(ops []op) summary {
	s := summary{Counts: map[string]map[string]int{}}
	seen := map[string]bool{}
	for _, o := range ops {
		if !seen[o.Collector] {
			seen[o.Collector] = true
			s.Collectors = append(s.Collectors, o.Collector)
		}
		if s.Counts[o.Kind] == nil {
			s.Counts[o.Kind] = map[string]int{}
		}
		s.Counts[o.Kind][o.Outcome]++
		if o.Pending {
			s.Pending++
		}
	}
	return s
}

func (s summary) write(w io.Writer, total int) {
	fmt.Fprintf(w, "operations: %d, collectors: %d, pending: %d\n", total, len(s.Collectors), s.Pending)
	for _, k := range kinds {
		byOutcome := s.Counts[k]
		if len(byOutcome) == 0 {
			continue
		}
		names := make([]string, 0, len(byOutcome))
		for name := range byOutcome {
			names = append(names, name)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, name := range names {
			parts[i] = fmt.Sprintf("%s=%d", name, byOutcome[name])
		}
		fmt.Fprintf(w, "  %-6s %s\n", k, strings.Join(parts, " "))
	}
}
