package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// methodNameAllowed lists the CLI files that may still name daemon
// methods. Each entry must still do so: a stale entry fails the test.
var methodNameAllowed = map[string]bool{}

// The CLI reaches the daemon only through internal/client's typed
// methods: no non-test file names an api.Method… constant, spells a
// method's wire name ("vm.show") or calls the generic Client.Call or
// Client.Stream.
func TestCLINamesNoDaemonMethod(t *testing.T) {
	wire := apiMethodNames(t)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		checked++
		found := methodNamesIn(t, f, wire)
		switch {
		case methodNameAllowed[f] && len(found) == 0:
			t.Errorf("%s names no daemon method any more: remove it from methodNameAllowed", f)
		case !methodNameAllowed[f]:
			for _, s := range found {
				t.Errorf("%s: use a typed internal/client method instead", s)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d files: not the cli package's directory?", checked)
	}
}

// methodNamesIn reports, as "file:line: what", each place file names a
// daemon method: an api.Method… selector (whatever the import is called),
// a string literal equal to a method's wire name, or a .Client.Call or
// .Client.Stream call.
func methodNamesIn(t *testing.T, file string, wire map[string]string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	apiName := ""
	for _, imp := range f.Imports {
		if path, _ := strconv.Unquote(imp.Path.Value); path == "github.com/banger-dev/banger/internal/api" {
			apiName = "api"
			if imp.Name != nil {
				apiName = imp.Name.Name
			}
		}
	}
	var found []string
	report := func(n ast.Node, what string) {
		found = append(found, fset.Position(n.Pos()).String()+": "+what)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && apiName != "" && x.Name == apiName && strings.HasPrefix(n.Sel.Name, "Method") {
				report(n, apiName+"."+n.Sel.Name)
			}
			if x, ok := n.X.(*ast.SelectorExpr); ok && x.Sel.Name == "Client" && (n.Sel.Name == "Call" || n.Sel.Name == "Stream") {
				report(n, "Client."+n.Sel.Name)
			}
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				break
			}
			if s, err := strconv.Unquote(n.Value); err == nil && wire[s] != "" {
				report(n, strconv.Quote(s)+" (api."+wire[s]+")")
			}
		}
		return true
	})
	return found
}

// apiMethodNames maps each method's wire name to its constant's name,
// read from internal/api's source.
func apiMethodNames(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join("..", "api", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	wire := map[string]string{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Method") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						wire[s] = name.Name
					}
				}
			}
		}
	}
	if len(wire) < 30 {
		names := make([]string, 0, len(wire))
		for s := range wire {
			names = append(names, s)
		}
		sort.Strings(names)
		t.Fatalf("found only %d method names in internal/api (%v): has it moved?", len(wire), names)
	}
	return wire
}
