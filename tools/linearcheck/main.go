// Command linearcheck checks a recorded history of collector token validity
// (creates, polls, rotations and deletes seen by the chaos test's clients)
// for linearizability with porcupine, one collector at a time: every poll
// outcome must be explainable by some order of the operations that respects
// real time, so a poll accepted with a token whose rotation or delete had
// already returned is caught.
//
// Exit status: 0 linearizable, 1 not linearizable, 2 inconclusive (the check
// hit --timeout), 3 bad input or usage.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

const (
	exitOK           = 0
	exitIllegal      = 1
	exitInconclusive = 2
	exitBadInput     = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("linearcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	historyPath := fs.String("history", "", "JSON-lines history to check (required)")
	htmlPath := fs.String("html", "", "write porcupine's visualization of the failing collectors here when the check fails")
	timeout := fs.Duration("timeout", 60*time.Second, "give up (exit 2) after this long")
	if err := fs.Parse(args); err != nil {
		return exitBadInput
	}
	if *historyPath == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: linearcheck --history FILE [--html OUT.html] [--timeout 60s]")
		return exitBadInput
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "linearcheck: --timeout must be positive")
		return exitBadInput
	}

	f, err := os.Open(*historyPath)
	if err != nil {
		fmt.Fprintf(stderr, "linearcheck: %v\n", err)
		return exitBadInput
	}
	ops, err := parseHistory(f)
	f.Close()
	if err != nil {
		var ie *inputError
		if errors.As(err, &ie) && ie.Line > 0 {
			fmt.Fprintf(stderr, "linearcheck: %s:%d: %s\n", *historyPath, ie.Line, ie.Msg)
		} else {
			fmt.Fprintf(stderr, "linearcheck: %s: %v\n", *historyPath, err)
		}
		return exitBadInput
	}

	if len(ops) == 0 {
		// An empty file passes trivially; from the chaos run it means the
		// recorder broke, which must not read as a green check.
		fmt.Fprintf(stderr, "linearcheck: %s: no operations\n", *historyPath)
		return exitBadInput
	}

	fmt.Fprintf(stdout, "linearcheck: %s\n", *historyPath)
	summarize(ops).write(stdout, len(ops))

	started := time.Now()
	deadline := started.Add(*timeout)
	model := tokenModel()
	history := operations(withoutUnansweredPolls(ops))
	switch porcupine.CheckOperationsTimeout(model, history, *timeout) {
	case porcupine.Ok:
		fmt.Fprintf(stdout, "result: linearizable (%s)\n", time.Since(started).Round(time.Millisecond))
		return exitOK
	case porcupine.Unknown:
		fmt.Fprintf(stdout, "result: inconclusive: no verdict within %s\n", *timeout)
		return exitInconclusive
	}

	// The partitioned check says only that some collector failed; recheck
	// each alone to name them, and visualize just those.
	var failing []string
	var failingOps []porcupine.Operation
	unchecked := 0
	for _, part := range partitionByCollector(history) {
		left := time.Until(deadline)
		if left <= 0 {
			unchecked++
			continue
		}
		if porcupine.CheckOperationsTimeout(model, part, left) == porcupine.Illegal {
			failing = append(failing, part[0].Input.(input).collector)
			failingOps = append(failingOps, part...)
		}
	}
	named := strings.Join(failing, ", ")
	if named == "" {
		named = "(none identified before --timeout)"
	}
	fmt.Fprintf(stdout, "result: NOT linearizable: collector(s) %s\n", named)
	if unchecked > 0 {
		fmt.Fprintf(stdout, "  (%d collector(s) not rechecked before --timeout; the list may be incomplete)\n", unchecked)
	}
	if *htmlPath != "" && len(failingOps) > 0 {
		if err := writeVisualization(model, failingOps, *htmlPath, time.Until(deadline)); err != nil {
			fmt.Fprintf(stderr, "linearcheck: visualization: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "  visualization: %s\n", *htmlPath)
		}
	}
	return exitIllegal
}

func writeVisualization(model porcupine.Model, ops []porcupine.Operation, path string, left time.Duration) error {
	if left <= 0 {
		return errors.New("no time left before --timeout")
	}
	ops = assignRows(ops)
	result, info := porcupine.CheckOperationsVerbose(model, ops, left)
	if result == porcupine.Unknown {
		return errors.New("timed out computing partial linearizations")
	}
	var notes []porcupine.Annotation
	for _, o := range ops {
		meta := o.Metadata.(opMeta)
		if !meta.pending {
			continue
		}
		notes = append(notes, porcupine.Annotation{
			ClientId:        o.ClientId,
			Start:           o.Call,
			Description:     "pending",
			Details:         fmt.Sprintf("%s: no answer, kept as pending from its call on (%s)", model.DescribeOperation(o.Input, o.Output), meta),
			BackgroundColor: "#fde68a",
		})
	}
	info.AddAnnotations(notes)
	return porcupine.VisualizePath(model, info, path)
}

// assignRows gives the visualization one row per client, in client order, and
// an extra row whenever a client's operations overlap (a timed-out request
// still pending while the client moved on); porcupine draws a row per
// ClientId from 0 to the largest, so raw ids would also leave empty rows.
func assignRows(ops []porcupine.Operation) []porcupine.Operation {
	sorted := slices.Clone(ops)
	slices.SortStableFunc(sorted, func(a, b porcupine.Operation) int {
		if c := cmp.Compare(a.ClientId, b.ClientId); c != 0 {
			return c
		}
		return cmp.Compare(a.Call, b.Call)
	})
	var rowEnds []int64 // last return on each row
	firstRowOfClient, client := 0, -1
	for i := range sorted {
		if sorted[i].ClientId != client {
			client = sorted[i].ClientId
			firstRowOfClient = len(rowEnds)
		}
		row := -1
		for r := firstRowOfClient; r < len(rowEnds); r++ {
			if rowEnds[r] < sorted[i].Call {
				row = r
				break
			}
		}
		if row < 0 {
			row = len(rowEnds)
			rowEnds = append(rowEnds, 0)
		}
		rowEnds[row] = sorted[i].Return
		sorted[i].ClientId = row
	}
	return sorted
}

// withoutUnansweredPolls drops the polls that never got an answer. In the
// model such a poll changes nothing and fits any state (its step is the
// identity), so it can be linearized anywhere and removing it cannot change
// the verdict; kept, each one is a pending operation porcupine must place,
// and a chaos run's hundreds of them can make the search exceed --timeout.
func withoutUnansweredPolls(ops []op) []op {
	kept := make([]op, 0, len(ops))
	for _, o := range ops {
		if o.Kind == "poll" && o.Pending {
			continue
		}
		kept = append(kept, o)
	}
	return kept
}
