package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/filterprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
)

var allContexts = []string{"log", "span", "spanevent", "metric", "datapoint", "resource", "scope"}

func runCases(t *testing.T, input string) []verdict {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(nil, strings.NewReader(input), &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	var verdicts []verdict
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var answer verdict
		if err := json.Unmarshal([]byte(line), &answer); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		verdicts = append(verdicts, answer)
	}
	return verdicts
}

func caseLine(t *testing.T, input checkCase) string {
	t.Helper()
	line, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	return string(line) + "\n"
}

func TestConditionsPerContext(t *testing.T) {
	tests := []struct {
		name       string
		contexts   []string
		condition  string
		wantOK     bool
		wantErrHas string
	}{
		{"attribute equality", allContexts[:3], `attributes["env"] == "prod"`, true, ""},
		{"attribute equality on data points, resources and scopes", []string{"datapoint", "resource", "scope"}, `attributes["env"] == "prod"`, true, ""},
		{"metrics carry no attributes of their own", []string{"metric"}, `attributes["env"] == "prod"`, false, "not a valid path"},
		{"unclosed index", allContexts, `attributes["env" ==`, false, "invalid syntax"},
		{"severity_text exists for logs", []string{"log"}, `severity_text == "ERROR"`, true, ""},
		{"severity_text is not a span path", []string{"span", "spanevent", "metric", "datapoint", "resource", "scope"}, `severity_text == "ERROR"`, false, "not a valid path"},
		{"IsMatch with a literal pattern", []string{"log"}, `IsMatch(body, "^a")`, true, ""},
		{"IsMatch compiles its pattern at load time", []string{"log"}, `IsMatch(body, "([a-z")`, false, "not a valid pattern"},
		{"unknown function", allContexts, `NoSuchFunction(attributes["env"])`, false, `undefined function "NoSuchFunction"`},
		{"editors are not conditions", []string{"log"}, `set(attributes["x"], "y")`, false, "invalid syntax"},
		{"severity enum", []string{"log"}, `severity_number >= SEVERITY_NUMBER_ERROR`, true, ""},
		{"unknown enum", []string{"log"}, `severity_number >= SEVERITY_NUMBER_LOUD`, false, "enum symbol"},
		{"span kind enum", []string{"span"}, `kind == SPAN_KIND_SERVER`, true, ""},
		{"metric-only path", []string{"metric"}, `type == METRIC_DATA_TYPE_SUM`, true, ""},
		{"metric-only path from a log", []string{"log"}, `type == METRIC_DATA_TYPE_SUM`, false, "not a valid path"},
		{"nil, booleans, and/or/not", []string{"log"}, `attributes["a"] == nil or not (attributes["b"] == false and true)`, true, ""},
		{"escaped quote", []string{"log"}, `body == "say \"hi\""`, true, ""},
		{"unknown escape", []string{"log"}, `body == "bad \q"`, false, "invalid quoted string"},
		{"unknown context", []string{"profile"}, `true`, false, "unknown context"},
	}
	for _, test := range tests {
		for _, context := range test.contexts {
			t.Run(test.name+"/"+context, func(t *testing.T) {
				got := runCases(t, caseLine(t, checkCase{Kind: "condition", Context: context, Text: test.condition}))[0]
				if got.OK != test.wantOK || !strings.Contains(got.Error, test.wantErrHas) {
					t.Errorf("%q in %s: got %+v, want ok=%v with error containing %q", test.condition, context, got, test.wantOK, test.wantErrHas)
				}
			})
		}
	}
}

func TestStatements(t *testing.T) {
	tests := []struct {
		context    string
		statement  string
		wantOK     bool
		wantErrHas string
	}{
		{"log", `set(attributes["x"], "y")`, true, ""},
		{"log", `set(attributes["x"])`, false, "incorrect number of arguments"},
		{"log", `set(attributes["x"], "y") where severity_number < SEVERITY_NUMBER_WARN`, true, ""},
		{"log", `replace_pattern(body, "(?<=token=)\\w+", "***")`, false, "not a valid pattern"},
		{"log", `IsMatch(body, "a")`, false, "editor names must start with a lowercase letter"},
		{"span", `set(severity_text, "x")`, false, "not a valid path"},
		{"metric", `convert_sum_to_gauge()`, true, ""},
		{"datapoint", `convert_sum_to_gauge()`, false, "undefined function"},
		{"resource", `set(attributes["k"], "v")`, true, ""},
		{"scope", `set(version, "1")`, true, ""},
	}
	for _, test := range tests {
		t.Run(test.context+"/"+test.statement, func(t *testing.T) {
			got := runCases(t, caseLine(t, checkCase{Kind: "statement", Context: test.context, Text: test.statement}))[0]
			if got.OK != test.wantOK || !strings.Contains(got.Error, test.wantErrHas) {
				t.Errorf("got %+v, want ok=%v with error containing %q", got, test.wantOK, test.wantErrHas)
			}
		})
	}
}

func TestRegexesAreRE2(t *testing.T) {
	tests := []struct {
		pattern string
		wantOK  bool
	}{
		{`([a-z`, false},
		{`(?P<name>a)`, true},
		{`(?=a)`, false},
		{`\p{Greek}`, true},
		{`\Qa.b\E`, true},
		{`[[:alpha:]]`, true},
		{`(a)\1`, false},
		{`(?i)error`, true},
		{`a*+`, false},
		{`(?>a)`, false},
		{`a{1000}`, true},
		{`a{1001}`, false},
	}
	for _, test := range tests {
		t.Run(test.pattern, func(t *testing.T) {
			// The context is ignored for regexes, whatever it says.
			got := runCases(t, caseLine(t, checkCase{Kind: "regex", Context: "metric", Text: test.pattern}))[0]
			if got.OK != test.wantOK {
				t.Errorf("got %+v, want ok=%v", got, test.wantOK)
			}
		})
	}
}

func TestUnreadableInputIsAUsageError(t *testing.T) {
	for _, input := range []string{"not json\n", `{"kind": "regex", "text": "a", "flavour": "pcre"}` + "\n"} {
		var out, errOut bytes.Buffer
		if code := run(nil, strings.NewReader(input), &out, &errOut); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", input, code, exitUsage)
		}
	}
	got := runCases(t, `{"kind": "grammar", "text": "a"}`+"\n")[0]
	if got.OK || !strings.Contains(got.Error, "unknown kind") {
		t.Errorf("unknown kind: got %+v", got)
	}
}

func readCorpus(t *testing.T) []checkCase {
	t.Helper()
	file, err := os.Open(filepath.Join("testdata", "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var cases []checkCase
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		var input checkCase
		if err := json.Unmarshal(scanner.Bytes(), &input); err != nil {
			t.Fatalf("corpus line %d: %v", len(cases)+1, err)
		}
		cases = append(cases, input)
	}
	return cases
}

// expected.jsonl is what the Rust parser is compared against; a dependency bump that changes any
// verdict or error text must show up here, and the file is then regenerated (README.md).
func TestCorpusVerdictsMatchExpected(t *testing.T) {
	corpus, err := os.ReadFile(filepath.Join("testdata", "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	expected, err := os.ReadFile(filepath.Join("testdata", "expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(nil, bytes.NewReader(corpus), &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	gotLines := strings.Split(out.String(), "\n")
	wantLines := strings.Split(string(expected), "\n")
	corpusLines := strings.Split(string(corpus), "\n")
	if len(gotLines) != len(wantLines) {
		t.Fatalf("%d verdicts, expected.jsonl has %d lines: regenerate it (README.md)", len(gotLines)-1, len(wantLines)-1)
	}
	for index := range gotLines {
		if gotLines[index] != wantLines[index] {
			t.Errorf("case %d %s\n got: %s\nwant: %s", index+1, corpusLines[index], gotLines[index], wantLines[index])
		}
	}
}

func TestCorpusCoversEveryKindAndContext(t *testing.T) {
	cases := readCorpus(t)
	if len(cases) < 150 {
		t.Errorf("corpus has %d cases, want at least 150", len(cases))
	}
	seen := map[string]bool{}
	for _, input := range cases {
		seen[input.Kind] = true
		if input.Kind != "regex" {
			seen[input.Kind+"/"+input.Context] = true
		}
	}
	for _, kind := range []string{"condition", "statement"} {
		for _, context := range allContexts {
			if !seen[kind+"/"+context] {
				t.Errorf("no %s case in the %s context", kind, context)
			}
		}
	}
	if !seen["regex"] {
		t.Error("no regex case")
	}
}

// The verdict for a condition is the filter processor's explicit per-context lists, which is what
// linkmesh renders. The same text can also reach the collector as a context-tagged filter list, a
// transform group's `conditions` or a statement's `where` clause; these are the corpus conditions on
// which those forms disagree in this release, pinned so that a dependency bump which changes them
// is noticed.
func TestCorpusConditionsWhereTheProcessorsDisagree(t *testing.T) {
	signalConditions := map[string]string{
		"log": "log_conditions", "resource": "log_conditions", "scope": "log_conditions",
		"span": "trace_conditions", "spanevent": "trace_conditions",
		"metric": "metric_conditions", "datapoint": "metric_conditions",
	}
	knownDisagreements := []string{
		`transform conditions accept, filter refuses: scope instrumentation_scope.name == "lib"`,
		`transform where refuses, filter accepts: metric HasAttrKeyOnDatapoint("k")`,
		`transform where refuses, filter accepts: metric HasAttrOnDatapoint("k", "v")`,
	}
	var disagreements []string
	record := func(form string, input checkCase, filterErr, otherErr error) {
		if (filterErr == nil) == (otherErr == nil) {
			return
		}
		verdict := " refuses, filter accepts: "
		if otherErr == nil {
			verdict = " accept, filter refuses: "
		}
		disagreements = append(disagreements, form+verdict+input.Context+" "+input.Text)
	}
	for _, input := range readCorpus(t) {
		section, known := signalConditions[input.Context]
		if input.Kind != "condition" || !known {
			continue
		}
		filterErr := checkFilterCondition(input.Context, input.Text)
		taggedErr := loadProcessorConfig(filterprocessor.NewFactory().CreateDefaultConfig(), map[string]any{
			section: []any{map[string]any{"context": input.Context, "conditions": []any{input.Text}}},
		})
		record("filter context-tagged", input, filterErr, taggedErr)
		record("transform conditions", input, filterErr, checkTransformCondition(input.Context, input.Text))
		record("transform where", input, filterErr, checkTransformStatement(input.Context, `set(cache["ottlcheck"], true) where `+input.Text))
	}
	slices.Sort(disagreements)
	if !slices.Equal(disagreements, knownDisagreements) {
		t.Errorf("disagreements changed:\n got: %q\nwant: %q", disagreements, knownDisagreements)
	}
}

// Resource and scope statements are checked under log_statements; linkmesh stamps resources under
// every signal's statements, so the verdict must not depend on the signal.
func TestResourceAndScopeVerdictsDoNotDependOnTheSignal(t *testing.T) {
	for _, input := range readCorpus(t) {
		if input.Kind == "regex" || (input.Context != "resource" && input.Context != "scope") {
			continue
		}
		statement := input.Text
		if input.Kind == "condition" {
			statement = `set(cache["ottlcheck"], true) where ` + input.Text
		}
		logErr := checkTransformStatement(input.Context, statement)
		for _, section := range []string{"trace_statements", "metric_statements"} {
			err := loadProcessorConfig(transformprocessor.NewFactory().CreateDefaultConfig(), map[string]any{
				section: []any{map[string]any{"context": input.Context, "statements": []any{statement}}},
			})
			if (err == nil) != (logErr == nil) {
				t.Errorf("%s %q: log_statements %v, %s %v", input.Context, statement, logErr, section, err)
			}
		}
	}
}
