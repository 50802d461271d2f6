// Command otelcheck validates an OpenTelemetry Collector YAML configuration
// the way the collector itself does at startup (`otelcol validate`): it
// resolves the configuration with the collector's confmap resolver, unmarshals
// it strictly with the upstream component factories, runs every component's
// own Validate, checks the service pipelines, and builds (but never starts)
// the pipeline graph.
//
// Usage:
//
//	otelcheck [-json] [FILE]
//
// With no FILE (or FILE "-") the configuration is read from stdin.
// Exit status: 0 valid ("ok"), 1 invalid (the collector's error text), 2 usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
	fs := flag.NewFlagSet("otelcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, `print {"ok":bool,"errors":[...]} instead of plain text`)
	list := fs.Bool("components", false, "list the component types this build knows and exit")
	quiet := fs.Bool("q", false, "do not print the collector's warnings (e.g. deprecated component types) to stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: otelcheck [-json] [-q] [FILE|-]")
		fmt.Fprintln(stderr, "       otelcheck -components")
		fmt.Fprintln(stderr, "Validates an OpenTelemetry Collector YAML config like `otelcol validate`.")
		fmt.Fprintln(stderr, "Reads stdin when FILE is absent or \"-\".")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage // includes -h: usage was printed to stderr
	}
	if *list {
		printComponents(stdout)
		return exitOK
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "otelcheck: at most one FILE argument")
		fs.Usage()
		return exitUsage
	}

	var data []byte
	var err error
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	if name == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "otelcheck: %v\n", err)
		return exitUsage
	}

	var warnings io.Writer = stderr
	if *quiet {
		warnings = io.Discard
	}
	verr := Validate(context.Background(), data, warnings)

	if *jsonOut {
		res := jsonResult{OK: verr == nil, Errors: []string{}}
		if verr != nil {
			res.Errors = splitErrors(verr)
		}
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "otelcheck: %v\n", err)
			return exitUsage
		}
	} else if verr == nil {
		fmt.Fprintln(stdout, "ok")
	} else {
		fmt.Fprintln(stdout, verr.Error())
	}
	if verr != nil {
		return exitInvalid
	}
	return exitOK
}

// splitErrors turns a (possibly joined) error into one string per line of
// the collector's message.
func splitErrors(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}

// Validate checks the YAML configuration in data using the same code path as
// `otelcol validate` (otelcol.NewCollector + Collector.DryRun). Warnings
// logged by the collector while doing so are written to warnings.
func Validate(ctx context.Context, data []byte, warnings io.Writer) error {
	// The collector reads its configuration through confmap providers; hand
	// it the bytes through the file provider so that resolution (including
	// ${env:VAR} expansion) is exactly what a running collector would do.
	dir, err := os.MkdirTemp("", "otelcheck-")
	if err != nil {
		return fmt.Errorf("otelcheck: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("otelcheck: %w", err)
	}

	warnCore := zapcore.NewCore(
		zapcore.NewConsoleEncoder(zapcore.EncoderConfig{
			MessageKey:     "msg",
			LevelKey:       "level",
			EncodeLevel:    zapcore.CapitalLevelEncoder,
			EncodeDuration: zapcore.StringDurationEncoder,
		}),
		zapcore.AddSync(warnings),
		zapcore.WarnLevel,
	)

	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcheck",
			Description: "linkmesh OpenTelemetry Collector config validator",
			Version:     "dev",
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs: []string{"file:" + path},
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
		LoggingOptions: []zap.Option{zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewTee(c, warnCore)
		})},
		SkipSettingGRPCLogger: true,
	}
	col, err := otelcol.NewCollector(set)
	if err != nil {
		return err
	}
	err = col.DryRun(ctx)
	if err != nil {
		return errors.New(strings.ReplaceAll(err.Error(), path, "config"))
	}
	return nil
}

func printComponents(w io.Writer) {
	f, err := components()
	if err != nil {
		fmt.Fprintln(w, err)
		return
	}
	section := func(kind string, types []component.Type) {
		names := make([]string, 0, len(types))
		for _, t := range types {
			names = append(names, t.String())
		}
		sort.Strings(names)
		fmt.Fprintf(w, "%s: %s\n", kind, strings.Join(names, " "))
	}
	section("receivers", keys(f.Receivers))
	section("processors", keys(f.Processors))
	section("exporters", keys(f.Exporters))
	section("connectors", keys(f.Connectors))
	section("extensions", keys(f.Extensions))
}

func keys[T any](m map[component.Type]T) []component.Type {
	out := make([]component.Type, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
