// Command alloycheck checks that Alloy configuration text is a valid module
// for Alloy's remotecfg block: it parses the text with Grafana's own parser
// (github.com/grafana/alloy/syntax/parser) and then applies the module rules
// (only component, declare, argument, export and import blocks; no
// attributes and no configuration blocks such as logging or remotecfg).
//
// Usage:
//
//	alloycheck [-require-declare] [-json] [FILE|-]
//
// With no FILE (or FILE "-") the text is read from stdin.
// Exit status: 0 valid ("ok"), 1 invalid (one message per line), 2 usage.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
)

const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type jsonResult struct {
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("alloycheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	requireDeclare := fs.Bool("require-declare", false, "also require every top-level block to be a declare block or an instantiation of a declared component")
	jsonOut := fs.Bool("json", false, `print {"ok":bool,"errors":[...]} instead of plain text`)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: alloycheck [-require-declare] [-json] [FILE|-]")
		fmt.Fprintln(stderr, "Checks Alloy configuration text as a remotecfg module. Reads stdin when FILE is absent or \"-\".")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "alloycheck: at most one FILE argument")
		fs.Usage()
		return exitUsage
	}

	var (
		data []byte
		err  error
		name string // used as the file name in messages; empty for stdin
	)
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		name = fs.Arg(0)
		data, err = os.ReadFile(name)
	} else {
		data, err = io.ReadAll(stdin)
	}
	if err != nil {
		fmt.Fprintf(stderr, "alloycheck: %v\n", err)
		return exitUsage
	}

	errs := Check(name, data, Options{RequireDeclare: *requireDeclare})

	if *jsonOut {
		res := jsonResult{OK: len(errs) == 0, Errors: errs}
		if res.Errors == nil {
			res.Errors = []string{}
		}
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			fmt.Fprintf(stderr, "alloycheck: %v\n", err)
			return exitUsage
		}
	} else if len(errs) == 0 {
		fmt.Fprintln(stdout, "ok")
	} else {
		for _, e := range errs {
			fmt.Fprintln(stdout, e)
		}
	}
	if len(errs) > 0 {
		return exitInvalid
	}
	return exitOK
}
