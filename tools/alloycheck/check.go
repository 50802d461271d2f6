package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/grafana/alloy/syntax/ast"
	"github.com/grafana/alloy/syntax/diag"
	"github.com/grafana/alloy/syntax/parser"
	"github.com/grafana/alloy/syntax/token"
)

// Options selects the optional rules.
type Options struct {
	// RequireDeclare requires every top-level block to be a `declare` block or
	// an instantiation of a component declared in the file: no component
	// (nor argument, export or import) block may sit at the top level itself.
	RequireDeclare bool
}

// importKinds are the import blocks Alloy knows (`import.file "x" { }` ...).
var importKinds = map[string]bool{"file": true, "string": true, "http": true, "git": true}

// Check parses src with Alloy's own parser and applies the remotecfg module
// rules. It returns nil when src is valid, else one message per problem, each
// starting with "[file:]line:col: ".
func Check(filename string, src []byte, opts Options) []string {
	f, err := parser.ParseFile(filename, src)
	if err != nil {
		return parseErrors(err)
	}
	c := &checker{opts: opts}
	c.body(f.Body, nil, true)
	return c.errs
}

// parseErrors renders every diagnostic of a parse error (diag.Diagnostics'
// own Error() keeps only the first).
func parseErrors(err error) []string {
	var ds diag.Diagnostics
	if errors.As(err, &ds) && len(ds) > 0 {
		out := make([]string, 0, len(ds))
		for _, d := range ds {
			out = append(out, d.Error())
		}
		return out
	}
	return []string{err.Error()}
}

type checker struct {
	opts Options
	errs []string
}

func (c *checker) addf(pos token.Pos, format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf("%s: %s", pos.Position(), fmt.Sprintf(format, args...)))
}

// body checks one module body: the file itself (top == true) or the body of
// a declare block. inherited holds the custom components declared by the
// enclosing scopes, which a nested body may also instantiate.
func (c *checker) body(body ast.Body, inherited map[string]bool, top bool) {
	declared := make(map[string]bool, len(inherited))
	for name := range inherited {
		declared[name] = true
	}
	for _, stmt := range body {
		if b, ok := stmt.(*ast.BlockStmt); ok && b.GetBlockName() == "declare" && b.Label != "" {
			declared[b.Label] = true
		}
	}

	where := "at the top level of a module"
	if !top {
		where = "inside a declare block"
	}

	seen := map[string]token.Pos{}
	for _, stmt := range body {
		switch s := stmt.(type) {
		case *ast.AttributeStmt:
			c.addf(s.Name.NamePos, "attribute %q is not allowed %s: a remotecfg module may only contain component, declare, argument, export and import blocks", s.Name.Name, where)

		case *ast.BlockStmt:
			name := s.GetBlockName()
			id := name
			if s.Label != "" {
				id = fmt.Sprintf("%s %q", name, s.Label)
			}
			kind := c.classify(s, declared)
			if kind == kindInvalid {
				continue
			}
			if s.Label == "" {
				c.addf(s.NamePos, "block %q must have a label (%s)", name, kindDesc[kind])
				continue
			}
			if prev, dup := seen[id]; dup {
				c.addf(s.NamePos, "block %s is defined more than once (first at %s)", id, prev.Position())
			} else {
				seen[id] = s.NamePos
			}

			if top && c.opts.RequireDeclare && kind != kindDeclare && kind != kindCustom {
				c.addf(s.NamePos, "%s block %s is not allowed at the top level with -require-declare (only declare blocks and instantiations of declared components may be there): put it inside a declare block", kindDesc[kind], id)
			}
			if kind == kindDeclare {
				c.body(s.Body, declared, false)
			}
		}
	}
}

type blockKind int

const (
	kindInvalid blockKind = iota
	kindComponent
	kindCustom
	kindDeclare
	kindArgument
	kindExport
	kindImport
)

var kindDesc = map[blockKind]string{
	kindComponent: "component",
	kindCustom:    "custom component",
	kindDeclare:   "declare",
	kindArgument:  "argument",
	kindExport:    "export",
	kindImport:    "import",
}

// serviceBlocks are Alloy's configuration (service) blocks, which belong in
// the main configuration file and are rejected in a module.
var serviceBlocks = map[string]bool{
	"logging": true, "tracing": true, "remotecfg": true, "http": true,
	"cluster": true, "livedebugging": true, "otelcol": true, "ui": true,
	"foreach": true,
}

// classify returns what kind of module statement b is, or kindInvalid after
// reporting why it is not allowed.
func (c *checker) classify(b *ast.BlockStmt, declared map[string]bool) blockKind {
	name := b.GetBlockName()
	switch {
	case len(b.Name) == 1 && name == "declare":
		return kindDeclare
	case len(b.Name) == 1 && name == "argument":
		return kindArgument
	case len(b.Name) == 1 && name == "export":
		return kindExport
	case b.Name[0] == "import":
		if len(b.Name) == 2 && importKinds[b.Name[1]] {
			return kindImport
		}
		c.addf(b.NamePos, "unknown import block %q: expected one of import.file, import.string, import.http, import.git", name)
		return kindInvalid
	case len(b.Name) > 1:
		// A built-in component (otelcol.receiver.otlp) or a component of an
		// imported module (namespace.component).
		return kindComponent
	case declared[name]:
		return kindCustom
	case serviceBlocks[name]:
		if b.Label == "" {
			c.addf(b.NamePos, "%s block is not allowed in a remotecfg module: it is a configuration (service) block that only the main configuration file may contain", name)
		} else {
			c.addf(b.NamePos, "%s block %q is not allowed in a remotecfg module: it is a configuration (service) block that only the main configuration file may contain", name, b.Label)
		}
		return kindInvalid
	default:
		what := name
		if b.Label != "" {
			what = fmt.Sprintf("%s %q", name, b.Label)
		}
		hint := "no declare block with that label is in scope"
		if b.Label == "" {
			hint = "a block without a label is a configuration (service) block, which a module may not contain"
		}
		c.addf(b.NamePos, "block %s is not allowed in a remotecfg module: it is neither a component, a declared custom component, nor a declare, argument, export or import block (%s)", strings.TrimSpace(what), hint)
		return kindInvalid
	}
}
