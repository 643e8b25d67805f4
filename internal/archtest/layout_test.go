package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/banger-dev/banger/"

// transportPkgs may take and return the unix-socket transport's types;
// every other function works on typed values and io streams, so that a
// second transport (HTTP, a remote CLI) reuses it unchanged.
var transportPkgs = map[string]bool{
	"internal/rpc":    true, // the transport
	"internal/rpcapi": true, // its server-side adapter over the services
	"internal/client": true, // its client side: typed methods over rpc
}

// transportTypes are the rpc package's types that must stay in adapters.
var transportTypes = map[string]bool{"Call": true, "Handler": true, "Conn": true, "Server": true}

// root is the repository root, two levels above this package.
func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

type goFile struct {
	rel  string // path from the repository root
	pkg  string // its directory, e.g. internal/daemon
	test bool
}

func goFiles(t *testing.T) []goFile {
	t.Helper()
	r := root(t)
	var out []goFile
	for _, top := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(r, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") {
				return err
			}
			rel, _ := filepath.Rel(r, p)
			out = append(out, goFile{rel: rel, pkg: filepath.Dir(rel), test: strings.HasSuffix(p, "_test.go")})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestNoTransportTypesOutsideAdapters: no function outside the transport
// packages takes or returns an rpc.Call, rpc.Handler, rpc.Conn or
// rpc.Server.
func TestNoTransportTypesOutsideAdapters(t *testing.T) {
	r := root(t)
	fset := token.NewFileSet()
	checked := 0
	for _, f := range goFiles(t) {
		if f.test || transportPkgs[f.pkg] {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(r, f.rel), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		local := ""
		for _, im := range file.Imports {
			if p, _ := strconv.Unquote(im.Path.Value); p == module+"internal/rpc" {
				local = "rpc"
				if im.Name != nil {
					local = im.Name.Name
				}
			}
		}
		checked++
		if local == "" {
			continue
		}
		ast.Inspect(file, func(n ast.Node) bool {
			ft, ok := n.(*ast.FuncType)
			if !ok {
				return true
			}
			for _, fl := range []*ast.FieldList{ft.Params, ft.Results} {
				if fl == nil {
					continue
				}
				for _, field := range fl.List {
					ast.Inspect(field.Type, func(n ast.Node) bool {
						if sel, ok := n.(*ast.SelectorExpr); ok {
							if id, ok := sel.X.(*ast.Ident); ok && id.Name == local && transportTypes[sel.Sel.Name] {
								t.Errorf("%s: a function takes or returns rpc.%s; only %v may (move the code into an adapter, and give the service io streams and typed values)",
									fset.Position(field.Pos()), sel.Sel.Name, keys(transportPkgs))
							}
						}
						return true
					})
				}
			}
			return true
		})
	}
	if checked < 50 {
		t.Fatalf("only %d files checked: is the repository root right (%s)?", checked, r)
	}
}

// TestFileSizes: no non-test file under internal/ exceeds maxFileLines;
// the daemon package stays a composition root.
func TestFileSizes(t *testing.T) {
	const maxFileLines, maxDaemonLines = 400, 600
	r := root(t)
	daemon := 0
	for _, f := range goFiles(t) {
		if f.test || !strings.HasPrefix(f.rel, "internal/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(r, f.rel))
		if err != nil {
			t.Fatal(err)
		}
		n := strings.Count(string(b), "\n")
		if n > maxFileLines {
			t.Errorf("%s has %d lines (limit %d): split it by concern", f.rel, n, maxFileLines)
		}
		if f.pkg == "internal/daemon" {
			daemon += n
		}
	}
	if daemon > maxDaemonLines {
		t.Errorf("internal/daemon has %d lines of non-test code (limit %d): it wires services, it does not hold their behaviour", daemon, maxDaemonLines)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
