package cli_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/rpc"
)

// kernel import takes one source: conflicting flags are a usage error
// (exit 2) naming them, and nothing reaches the daemon.
func TestKernelImportRefusesConflictingSources(t *testing.T) {
	ok := func(context.Context, *rpc.Call) (any, error) { return api.Kernel{Name: "k", Release: "6.1"}, nil }
	f := startDaemon(t, map[string]rpc.Handler{api.MethodKernelImport: ok, api.MethodKernelImportFile: ok})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--package", "linux-image-x", "--deb", "k.deb"}, "--package and --deb"},
		{[]string{"--deb", "k.deb", "--kernel", "vmlinuz"}, "--deb and --kernel"},
		{[]string{"--package", "p", "--kernel", "vmlinuz", "--release", "6.1"}, "--package and --kernel"},
		{[]string{"--package", "p", "--deb", "k.deb", "--kernel", "vmlinuz"}, "--package and --deb and --kernel"},
		{[]string{"--deb", "k.deb", "--modules", "m.cpio"}, "go with --kernel"},
		{[]string{"--release", "6.1"}, "go with --kernel"},
	} {
		code, _, errs := runWith(t, f, append([]string{"kernel", "import", "k"}, c.args...)...)
		if code != cli.ExitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("kernel import %v: exit %d, stderr %q; want %d and %q", c.args, code, errs, cli.ExitUsage, c.want)
		}
	}
	if m := f.methods(); len(m) != 0 {
		t.Fatalf("refused imports reached the daemon: %v", m)
	}
	if code, _, errs := runWith(t, f, "kernel", "import", "k", "--package", "linux-image-x"); code != 0 {
		t.Fatalf("one source: exit %d %q", code, errs)
	}
}

// --deb sends the file's bytes (the daemon opens no path of ours), named
// by its absolute path; a relative name is the caller's.
func TestKernelImportSendsTheDeb(t *testing.T) {
	type got struct {
		p    api.ImportKernelParams
		body []byte
	}
	gotc := make(chan got, 1)
	f := startDaemon(t, map[string]rpc.Handler{api.MethodKernelImport: func(_ context.Context, c *rpc.Call) (any, error) {
		var g got
		err := c.Decode(&g.p)
		if err == nil {
			g.body, err = io.ReadAll(c.Body())
		}
		gotc <- g
		return api.Kernel{Name: "k", Release: "6.1"}, err
	}})
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dist", "k.deb"), []byte("!<arch>\ndeb bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if code, _, errs := runWith(t, f, "kernel", "import", "k", "--deb", "dist/k.deb"); code != 0 {
		t.Fatalf("exit %d %q", code, errs)
	}
	g := <-gotc
	if g.p.DebFile != filepath.Join(dir, "dist", "k.deb") || g.p.Size != 17 || string(g.body) != "!<arch>\ndeb bytes" {
		t.Fatalf("daemon got %+v with body %q, want the absolute name, size 17 and the file's bytes", g.p, g.body)
	}
	// A --deb that is not there fails here, before the daemon hears of it.
	code, _, errs := runWith(t, f, "kernel", "import", "k", "--deb", "dist/none.deb")
	if code == 0 || !strings.Contains(errs, "--deb: open "+filepath.Join(dir, "dist", "none.deb")) {
		t.Fatalf("missing --deb: exit %d %q", code, errs)
	}
}
