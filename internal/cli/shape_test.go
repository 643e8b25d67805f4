package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
	"testing"
)

// The root and group constructors list every command (newRootCmd,
// newVMCmd, ...): no file registers commands from an init function,
// where the tree could only be seen by reading every file.
func TestNoInitFunctions(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, p := range pkgs {
		for name, f := range p.Files {
			files++
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == "init" {
					t.Errorf("%s: func init at %s: add the command in its group's constructor instead", name, fset.Position(fn.Pos()))
				}
			}
		}
	}
	if files < 10 {
		t.Fatalf("parsed only %d files", files)
	}
}
