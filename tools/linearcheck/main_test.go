package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func parseFixture(t *testing.T, name string) []op {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ops, err := parseHistory(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ops
}

func linearizable(ops []op) bool {
	return porcupine.CheckOperations(tokenModel(), operations(ops))
}

// A poll accepted with t0 that was sent after the rotate to t1 returned is
// exactly the revocation bug the chaos run hunts; c2 in the same file is fine
// and must not be named.
func TestRevocationBrokenFails(t *testing.T) {
	html := filepath.Join(t.TempDir(), "out.html")
	code, out, errOut := runCLI(t, "--history", "testdata/revocation_broken.jsonl", "--html", html)
	if code != exitIllegal {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitIllegal, out, errOut)
	}
	if !strings.Contains(out, "NOT linearizable: collector(s) c1\n") {
		t.Errorf("summary does not name exactly c1:\n%s", out)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatalf("no visualization: %v", err)
	}
	for _, want := range []string{`poll(c1, t0) -\u003e accepted`, `rotate(c1, t1) -\u003e ok`, "node node-2", "line 6"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("visualization lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte("(c2, ")) {
		t.Errorf("visualization shows the linearizable collector c2")
	}
}

// Recorded by the chaos run (cluster-tests/chaos) against a build whose owners
// kept serving without a lease: node-3 accepted t9 at 40.6 s, after the
// rotation to t10 had returned at 39.8 s. A real history, not a hand-made one.
func TestRecordedOwnerPastItsLeaseFails(t *testing.T) {
	code, out, errOut := runCLI(t, "--history", "testdata/recorded_owner_served_past_lease.jsonl")
	if code != exitIllegal {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitIllegal, out, errOut)
	}
	if !strings.Contains(out, "NOT linearizable: collector(s) col_18932746bdb17129c436") {
		t.Errorf("summary does not name the collector:\n%s", out)
	}
}

// The same history without the late poll is fine: the failure comes from
// that poll alone, not from the model rejecting the rest.
func TestRevocationBrokenWithoutLatePollPasses(t *testing.T) {
	var kept []op
	for _, o := range parseFixture(t, "revocation_broken.jsonl") {
		if o.Line != 6 {
			kept = append(kept, o)
		}
	}
	if !linearizable(kept) {
		t.Fatal("history without the late poll should be linearizable")
	}
}

func TestConcurrentOverlapPasses(t *testing.T) {
	code, out, errOut := runCLI(t, "--history", "testdata/concurrent_ok.jsonl")
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"operations: 14, collectors: 2, pending: 0", "poll   accepted=5 refused=3", "result: linearizable"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// Timed-out operations stay in the history as pending: the refusal of t0 at
// 100 is explained only by the rotate whose answer never came.
func TestTimedOutOperationsArePending(t *testing.T) {
	ops := parseFixture(t, "pending.jsonl")
	if len(ops) != 4 {
		t.Fatalf("parsed %d operations, want 4", len(ops))
	}
	var pending []op
	for _, o := range ops {
		if o.Pending {
			pending = append(pending, o)
		}
	}
	if len(pending) != 2 || pending[0].Kind != "poll" || pending[1].Kind != "rotate" {
		t.Fatalf("pending operations %+v, want the poll and the rotate", pending)
	}
	history := operations(ops)
	var last int64
	for _, o := range ops {
		if !o.Pending {
			last = max(last, o.Return)
		}
	}
	for i, o := range ops {
		if o.Pending && history[i].Return <= last {
			t.Errorf("line %d: pending return %d is not after every event (last %d)", o.Line, history[i].Return, last)
		}
	}
	if !linearizable(ops) {
		t.Fatal("the pending rotate should explain the later refusal of t0")
	}
	var withoutRotate []op
	for _, o := range ops {
		if o.Kind != "rotate" {
			withoutRotate = append(withoutRotate, o)
		}
	}
	if linearizable(withoutRotate) {
		t.Fatal("without the pending rotate the refusal of t0 must be illegal")
	}

	code, out, _ := runCLI(t, "--history", "testdata/pending.jsonl")
	if code != exitOK || !strings.Contains(out, "operations: 4, collectors: 1, pending: 2") {
		t.Fatalf("exit %d, summary:\n%s", code, out)
	}
}

// A timed-out rotate may also never have happened: a later acceptance of
// the old token is then legal too.
func TestPendingRotateMayNotHaveHappened(t *testing.T) {
	ops := parseFixture(t, "pending.jsonl")
	ops[3].Outcome = "accepted"
	if !linearizable(ops) {
		t.Fatal("t0 accepted after a rotate with no answer should be legal")
	}
}

func TestDeleteThenAcceptedFails(t *testing.T) {
	code, out, errOut := runCLI(t, "--history", "testdata/delete_then_accepted.jsonl")
	if code != exitIllegal || !strings.Contains(out, "collector(s) c1") {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestBadInputNamesTheLine(t *testing.T) {
	good := `{"collector":"c1","client":0,"op":"create","token":"t0","call":0,"return":10,"outcome":"ok","node":"node-1"}`
	cases := []struct {
		name, line, want string
	}{
		{"unknown op", `{"collector":"c1","client":0,"op":"renew","token":"t0","call":20,"return":30,"outcome":"ok","node":"n"}`, `unknown op "renew"`},
		{"unknown outcome", `{"collector":"c1","client":0,"op":"poll","token":"t0","call":20,"return":30,"outcome":"ok","node":"n"}`, `unknown outcome "ok" for poll`},
		{"return before call", `{"collector":"c1","client":0,"op":"poll","token":"t0","call":20,"return":19,"outcome":"accepted","node":"n"}`, "before call"},
		{"malformed", `{"collector":"c1","client":0,"op":"poll",`, "malformed JSON"},
		{"misspelt key", `{"collector":"c1","client":0,"op":"poll","token":"t0","call":20,"retrun":30,"outcome":"accepted","node":"n"}`, "malformed JSON"},
		{"missing call", `{"collector":"c1","client":0,"op":"poll","token":"t0","return":30,"outcome":"accepted","node":"n"}`, "missing call"},
		{"missing return", `{"collector":"c1","client":0,"op":"poll","token":"t0","call":20,"outcome":"accepted","node":"n"}`, "missing return"},
		{"definite outcome without return", `{"collector":"c1","client":0,"op":"poll","token":"t0","call":20,"return":null,"outcome":"accepted","node":"n"}`, "null return"},
		{"poll without token", `{"collector":"c1","client":0,"op":"poll","token":null,"call":20,"return":30,"outcome":"refused","node":"n"}`, "needs a token"},
		{"reused label", `{"collector":"c1","client":0,"op":"rotate","token":"t0","call":20,"return":30,"outcome":"ok","node":"n"}`, "already issued on line 1"},
		{"real token", `{"collector":"c1","client":0,"op":"poll","token":"lmct_abc","call":20,"return":30,"outcome":"accepted","node":"n"}`, "real collector token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "h.jsonl")
			// A blank line before the bad one: line numbers count every line.
			if err := os.WriteFile(path, []byte(good+"\n\n"+tc.line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, "--history", path)
			if code != exitBadInput {
				t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if !strings.Contains(errOut, path+":3: ") || !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr %q lacks %q at line 3", errOut, tc.want)
			}
			if out != "" {
				t.Errorf("bad input still printed a summary: %q", out)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "--history", empty); code != exitBadInput || !strings.Contains(errOut, "no operations") {
		t.Errorf("empty history: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{}, {"--history"}, {"--history", "testdata/pending.jsonl", "extra"}, {"--history", "testdata/missing.jsonl"}} {
		if code, _, _ := runCLI(t, args...); code != exitBadInput {
			t.Errorf("%v: exit %d, want 3", args, code)
		}
	}
}

// The model's transitions, one row per rule in README.md.
func TestStep(t *testing.T) {
	abs, del := state{phase: absent}, state{phase: deleted}
	t0, t1, fresh := state{live, "t0"}, state{live, "t1"}, state{phase: live}
	cases := []struct {
		from    state
		kind    string
		token   string
		outcome string
		want    []state
	}{
		{abs, "create", "t0", "ok", []state{t0}},
		{t0, "create", "t1", "ok", nil},
		{abs, "create", "", "unknown", []state{abs, fresh}},
		{t0, "poll", "t0", "accepted", []state{t0}},
		{t1, "poll", "t0", "accepted", nil},
		{fresh, "poll", "t0", "accepted", nil},
		{del, "poll", "t0", "accepted", nil},
		{t1, "poll", "t0", "refused", []state{t1}},
		{t0, "poll", "t0", "refused", nil},
		{del, "poll", "t0", "refused", []state{del}},
		{t0, "poll", "t0", "unknown", []state{t0}},
		{t0, "rotate", "t1", "ok", []state{t1}},
		{abs, "rotate", "t1", "ok", nil},
		{del, "rotate", "t1", "ok", nil},
		{del, "rotate", "", "not_found", []state{del}},
		{t0, "rotate", "", "not_found", nil},
		{t0, "rotate", "", "unknown", []state{t0, fresh}},
		{t0, "rotate", "t1", "unknown", []state{t0, t1}},
		{del, "rotate", "", "unknown", []state{del}},
		{t0, "delete", "", "ok", []state{del}},
		{del, "delete", "", "ok", nil},
		{abs, "delete", "", "not_found", []state{abs}},
		{t0, "delete", "", "not_found", nil},
		{t0, "delete", "", "unknown", []state{t0, del}},
	}
	for _, tc := range cases {
		got := step(tc.from, input{collector: "c", kind: tc.kind, token: tc.token}, tc.outcome)
		if len(got) != len(tc.want) {
			t.Errorf("%v %s(%s) %s: got %v, want %v", tc.from, tc.kind, tc.token, tc.outcome, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v %s(%s) %s: got %v, want %v", tc.from, tc.kind, tc.token, tc.outcome, got, tc.want)
			}
		}
	}
}

// Visualization rows: dense, one per client, plus one per overlap so a
// pending request does not hide its client's later operations.
func TestAssignRows(t *testing.T) {
	mk := func(client int, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret}
	}
	got := assignRows([]porcupine.Operation{
		mk(7, 0, 10), mk(40, 5, 1000), mk(40, 20, 30), mk(40, 40, 50), mk(7, 20, 30),
	})
	var rows []int
	for _, o := range got {
		rows = append(rows, o.ClientId)
	}
	// Sorted by client then call: 7:[0,10] 7:[20,30] 40:[5,1000] 40:[20,30] 40:[40,50].
	if want := []int{0, 0, 1, 2, 2}; !slices.Equal(rows, want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
	for _, o := range got {
		for _, p := range got {
			if o != p && o.ClientId == p.ClientId && o.Call <= p.Return && p.Call <= o.Return {
				t.Errorf("overlapping operations on row %d: %+v %+v", o.ClientId, o, p)
			}
		}
	}
}

// An unanswered poll fits every state, so dropping it keeps the verdict:
// the pending fixture stays linearizable without its pending poll, and only
// that poll goes.
func TestUnansweredPollsAreDroppedWithoutChangingTheVerdict(t *testing.T) {
	ops := parseFixture(t, "pending.jsonl")
	kept := withoutUnansweredPolls(ops)
	if len(kept) != len(ops)-1 {
		t.Fatalf("kept %d of %d operations, want all but the pending poll", len(kept), len(ops))
	}
	for _, o := range kept {
		if o.Kind == "poll" && o.Pending {
			t.Fatalf("line %d: an unanswered poll was kept", o.Line)
		}
	}
	if linearizable(ops) != linearizable(kept) {
		t.Fatal("dropping the unanswered poll changed the verdict")
	}
}
