package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const declaredPipeline = `declare "p" {
  otelcol.receiver.otlp "in" {
    grpc { }
    output { }
  }
}

p "default" { }
`

func TestCheck(t *testing.T) {
	tests := []struct {
		name           string
		src            string
		requireDeclare bool
		// wantErrs are substrings, one per expected message, in order; nil means valid.
		wantErrs []string
	}{
		{name: "comment only", src: "// linkmesh: nothing configured\n"},
		{name: "empty", src: ""},
		{name: "declare and instantiate", src: declaredPipeline},
		{name: "declare and instantiate with require-declare", src: declaredPipeline, requireDeclare: true},
		{
			name: "top-level components, argument, export, import",
			src: `argument "input" { optional = true }
import.file "lib" { filename = "/etc/alloy/lib.alloy" }
lib.pipeline "x" { }
otelcol.exporter.otlp "out" {
  client { endpoint = "otel:4317" }
}
export "out" { value = otelcol.exporter.otlp.out.input }
`,
		},
		{
			name: "instantiation before declaration and nested declare",
			src: `outer "a" { }
declare "outer" {
  argument "x" { }
  declare "inner" {
    otelcol.processor.batch "b" {
      output { }
    }
  }
  inner "i" { }
  outer_helper "h" { }
}
declare "outer_helper" { }
`,
		},
		{
			name:     "logging block",
			src:      `logging { level = "info" }`,
			wantErrs: []string{`1:1: logging block is not allowed`},
		},
		{
			name:     "remotecfg block",
			src:      "remotecfg { }\n",
			wantErrs: []string{`1:1: remotecfg block is not allowed`},
		},
		{
			name:     "tracing, http, cluster, livedebugging",
			src:      "tracing { }\nhttp { }\ncluster { }\nlivedebugging { }\n",
			wantErrs: []string{"1:1: tracing block", "2:1: http block", "3:1: cluster block", "4:1: livedebugging block"},
		},
		{
			name:     "top-level attribute",
			src:      "x = 1\n",
			wantErrs: []string{`1:1: attribute "x" is not allowed at the top level`},
		},
		{
			name:     "syntax error reports the parser's message",
			src:      "otelcol.receiver.otlp \"in\" {\n  grpc {\n",
			wantErrs: []string{"3:1: expected }, got EOF"},
		},
		{
			name:     "two statements on one line is a parse error",
			src:      `declare "p" { otelcol.receiver.otlp "in" { grpc { } output { } } }`,
			wantErrs: []string{"1:53: expected TERMINATOR, got IDENT"},
		},
		{
			name:     "unlabelled component",
			src:      "otelcol.processor.batch { }\n",
			wantErrs: []string{`1:1: block "otelcol.processor.batch" must have a label`},
		},
		{
			name:     "unknown single-name block",
			src:      "pipeline \"x\" { }\n",
			wantErrs: []string{`1:1: block pipeline "x" is not allowed`},
		},
		{
			name:     "unknown import kind",
			src:      "import.s3 \"x\" { }\n",
			wantErrs: []string{`1:1: unknown import block "import.s3"`},
		},
		{
			name: "rules apply inside declare",
			src: `declare "p" {
  logging { }
  level = "debug"
  declare "q" {
    remotecfg { }
  }
}
`,
			wantErrs: []string{"2:3: logging block", `3:3: attribute "level" is not allowed inside a declare block`, "5:5: remotecfg block"},
		},
		{
			name:     "inner declare not visible outside",
			src:      "declare \"p\" {\n  declare \"q\" { }\n}\nq \"x\" { }\n",
			wantErrs: []string{`4:1: block q "x" is not allowed`},
		},
		{
			name:     "duplicate block",
			src:      "otelcol.processor.batch \"b\" { }\notelcol.processor.batch \"b\" { }\n",
			wantErrs: []string{`2:1: block otelcol.processor.batch "b" is defined more than once (first at 1:1)`},
		},
		{
			name: "require-declare rejects top-level components",
			src: declaredPipeline + `otelcol.exporter.otlp "out" {
  client { endpoint = "otel:4317" }
}
`,
			requireDeclare: true,
			wantErrs:       []string{`9:1: component block otelcol.exporter.otlp "out" is not allowed at the top level with -require-declare`},
		},
		{
			name:     "top-level components fine without require-declare",
			src:      declaredPipeline + "otelcol.exporter.debug \"d\" { }\n",
			wantErrs: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := Check("", []byte(tc.src), Options{RequireDeclare: tc.requireDeclare})
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("got %d errors %q, want %d matching %q", len(errs), errs, len(tc.wantErrs), tc.wantErrs)
			}
			for i, want := range tc.wantErrs {
				if !strings.Contains(errs[i], want) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], want)
				}
			}
		})
	}
}

func TestRunExitCodesAndOutput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.alloy", "// linkmesh: nothing configured\n")
	bad := write("bad.alloy", "logging { level = \"info\" }\n")
	broken := write("broken.alloy", "otelcol.receiver.otlp \"x\" {\n")

	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  string
	}{
		{"valid file", []string{good}, "", 0, "ok\n"},
		{"valid stdin", nil, "// linkmesh: nothing configured\n", 0, "ok\n"},
		{"valid stdin dash", []string{"-"}, declaredPipeline, 0, "ok\n"},
		{"invalid file names file, line and block", []string{bad}, "", 1, bad + ":1:1: logging block is not allowed"},
		{"parse error", []string{broken}, "", 1, broken + ":2:1: expected }, got EOF"},
		{"invalid stdin", nil, "x = 1\n", 1, `1:1: attribute "x"`},
		{"json ok", []string{"-json", good}, "", 0, `{"ok":true,"errors":[]}` + "\n"},
		{"unknown flag", []string{"-nope"}, "", 2, ""},
		{"two files", []string{good, bad}, "", 2, ""},
		{"missing file", []string{filepath.Join(dir, "missing.alloy")}, "", 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, tc.wantCode, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tc.wantOut)
			}
		})
	}
}

func TestRunJSONErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-json"}, strings.NewReader("x = 1\nremotecfg { }\n"), &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var res jsonResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("bad JSON %q: %v", stdout.String(), err)
	}
	if res.OK || len(res.Errors) != 2 {
		t.Fatalf("got %+v, want ok=false and 2 errors", res)
	}
}
