package cli_test

import (
	"context"
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

// A relative --deb is the caller's: the daemon, started elsewhere, gets
// it absolute.
func TestKernelImportDebIsAbsolute(t *testing.T) {
	got := make(chan api.ImportKernelParams, 1)
	f := startDaemon(t, map[string]rpc.Handler{api.MethodKernelImport: func(_ context.Context, c *rpc.Call) (any, error) {
		var p api.ImportKernelParams
		err := c.Decode(&p)
		got <- p
		return api.Kernel{Name: "k", Release: "6.1"}, err
	}})
	if code, _, errs := runWith(t, f, "kernel", "import", "k", "--deb", "dist/k.deb"); code != 0 {
		t.Fatalf("exit %d %q", code, errs)
	}
	wd, _ := os.Getwd()
	if p := <-got; p.DebFile != filepath.Join(wd, "dist", "k.deb") {
		t.Fatalf("daemon got --deb %q, want it absolute", p.DebFile)
	}
}
