package cli_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

// image register sends the file's bytes with its absolute name and size;
// the daemon (here a fake) never needs to see the caller's directory.
func TestImageRegisterSendsTheRootfs(t *testing.T) {
	type got struct {
		p    api.RegisterImageParams
		body string
	}
	gotc := make(chan got, 1)
	f := startDaemon(t, map[string]rpc.Handler{api.MethodImageRegister: func(_ context.Context, c *rpc.Call) (any, error) {
		var g got
		err := c.Decode(&g.p)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(c.Body())
			g.body = string(b)
		}
		gotc <- g
		return api.ImageInfo{Image: api.Image{Name: g.p.Name, SizeBytes: int64(len(g.body))}}, err
	}})
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("root.ext4", []byte("ext4 bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runWith(t, f, "image", "register", "mine", "--rootfs", "root.ext4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	g := <-gotc
	if g.p.Rootfs != filepath.Join(dir, "root.ext4") || g.p.Size != 10 || g.body != "ext4 bytes" {
		t.Errorf("daemon got %+v with body %q", g.p, g.body)
	}
	if !strings.Contains(out, "image mine registered") {
		t.Errorf("output %q", out)
	}
	// A missing file or a directory fails here, before the daemon hears of it.
	for _, arg := range []string{"none.ext4", "."} {
		code, _, errs := runWith(t, f, "image", "register", "mine", "--rootfs", arg)
		if code == 0 || !strings.Contains(errs, "image register: --rootfs") {
			t.Errorf("--rootfs %s: exit %d %q", arg, code, errs)
		}
	}
	if m := f.methods(); len(m) != 1 {
		t.Errorf("daemon calls %v, want the one register", m)
	}
}
