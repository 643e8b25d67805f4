package cli_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent"
	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

// cpDaemon is a fake daemon whose vm.cp methods relay to a real agent
// serving a temporary directory that stands for the guest's "/".
func cpDaemon(t *testing.T) (*fakeDaemon, string) {
	t.Helper()
	guest := t.TempDir()
	os.MkdirAll(filepath.Join(guest, "root"), 0o700)
	host, g := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go (&agent.Server{}).ServeConn(ctx, g)
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	ac, err := agentclient.Connect(cctx, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ac.Close() })
	relay := func(ctx context.Context, c *rpc.Call, op string, params any) (any, error) {
		st, _, err := ac.Open(ctx, op, params)
		if err != nil {
			return nil, &api.Error{Code: api.CodeInvalid, Message: err.Error()}
		}
		conn, br, err := c.Upgrade(api.VM{Name: "dev"})
		if err != nil {
			return nil, err
		}
		go func() {
			defer conn.Close()
			defer st.Close()
			go func() { io.Copy(st, br); st.Close() }()
			io.Copy(conn, st)
		}()
		return nil, rpc.ErrUpgraded
	}
	return startDaemon(t, map[string]rpc.Handler{
		api.MethodVMCopyIn: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.CopyInParams
			c.Decode(&p)
			into := filepath.Join(guest, p.Path)
			if strings.HasSuffix(p.Path, "/") {
				into += "/"
			}
			return relay(ctx, c, proto.OpCopyIn, proto.CopyInParams{Into: into, Base: p.Base})
		},
		api.MethodVMCopyOut: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.CopyOutParams
			c.Decode(&p)
			return relay(ctx, c, proto.OpCopyOut, proto.CopyOutParams{Path: filepath.Join(guest, p.Path)})
		},
	}), guest
}

func TestVMCpRoundTrip(t *testing.T) {
	d, guest := cpDaemon(t)
	src := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin", "tool"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(src, "secret"), []byte("s3cret"), 0o600)
	os.Chmod(filepath.Join(src, "secret"), 0o600)
	os.Chmod(filepath.Join(src, "bin"), 0o750)
	os.Symlink("bin/tool", filepath.Join(src, "link"))
	old := time.Date(2022, 2, 2, 2, 2, 2, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "secret"), old, old)

	env, _, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "cp", src, "dev:/srv/"); code != 1 || !strings.Contains(errb.String(), "does not exist in the guest") {
		t.Fatalf("missing guest dir: %d %q", code, errb)
	}
	os.MkdirAll(filepath.Join(guest, "srv"), 0o755)
	if code := runCLI(t, env, "vm", "cp", src, "dev:/srv/"); code != 0 {
		t.Fatalf("cp in: %d %s", code, errb)
	}
	check := func(root string) {
		t.Helper()
		for rel, mode := range map[string]os.FileMode{"bin": 0o750 | os.ModeDir, "bin/tool": 0o755, "secret": 0o600} {
			st, err := os.Lstat(filepath.Join(root, rel))
			if err != nil || st.Mode() != mode {
				t.Errorf("%s/%s: %v %v, want %v", root, rel, st.Mode(), err, mode)
			}
		}
		if l, _ := os.Readlink(filepath.Join(root, "link")); l != "bin/tool" {
			t.Errorf("%s: link %q", root, l)
		}
		if st, _ := os.Stat(filepath.Join(root, "secret")); !st.ModTime().Equal(old) {
			t.Errorf("%s: mtime %v", root, st.ModTime())
		}
	}
	check(filepath.Join(guest, "srv", "tree"))

	// Back out under a new name, guest path relative to /root.
	os.Rename(filepath.Join(guest, "srv", "tree"), filepath.Join(guest, "root", "tree"))
	out := filepath.Join(t.TempDir(), "back")
	if code := runCLI(t, env, "vm", "cp", "dev:tree", out); code != 0 {
		t.Fatalf("cp out: %d %s", code, errb)
	}
	check(out)
	// Into an existing directory: under the source's name.
	into := t.TempDir()
	if code := runCLI(t, env, "vm", "cp", "dev:/root/tree/secret", into); code != 0 {
		t.Fatalf("cp out file: %d %s", code, errb)
	}
	if b, _ := os.ReadFile(filepath.Join(into, "secret")); string(b) != "s3cret" {
		t.Errorf("file copied out: %q", b)
	}
	errb.Reset()
	if code := runCLI(t, env, "vm", "cp", "dev:/root/missing", into); code != 1 || !strings.Contains(errb.String(), "/root/missing: no such file or directory in the guest") {
		t.Errorf("missing guest source: %d %q", code, errb)
	}
	errb.Reset()
	if code := runCLI(t, env, "vm", "cp", "dev:/root/tree", filepath.Join(into, "no", "such")); code != 1 || !strings.Contains(errb.String(), "parent directory") {
		t.Errorf("missing local parent: %d %q", code, errb)
	}
	errb.Reset()
	if code := runCLI(t, env, "vm", "cp", filepath.Join(into, "nope"), "dev:/root"); code != 1 || !strings.Contains(errb.String(), "nope: no such file or directory") {
		t.Errorf("missing local source: %d %q", code, errb)
	}
}

// Names of skipped guest entries come from the guest: a bidirectional
// override or an escape sequence reaches the terminal as a visible escape.
func TestVMCpEscapesSkippedGuestNames(t *testing.T) {
	d, guest := cpDaemon(t)
	dir := filepath.Join(guest, "root", "d")
	os.MkdirAll(dir, 0o755)
	for _, name := range []string{"fifo\u202etxt.exe", "fifo\x1b]0;pwned\x07"} {
		if err := syscall.Mkfifo(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, _, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "cp", "dev:d", filepath.Join(t.TempDir(), "d")); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	got := errb.String()
	if strings.ContainsAny(got, "\u202e\x1b\x07") || !strings.Contains(got, `fifo\u202etxt.exe`) || !strings.Contains(got, `fifo\x1b]0;pwned\a`) {
		t.Fatalf("stderr %q: want both skipped names, escaped", got)
	}
}

func TestVMCpTarStreams(t *testing.T) {
	d, guest := cpDaemon(t)
	os.MkdirAll(filepath.Join(guest, "root", "www"), 0o755)
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./index.html", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("hi"))
	tw.Close()
	env, out, errb := newEnv(t, d.dial, in.String())
	if code := runCLI(t, env, "vm", "cp", "-", "dev:www"); code != 0 {
		t.Fatalf("cp - in: %d %s", code, errb)
	}
	if b, _ := os.ReadFile(filepath.Join(guest, "root", "www", "index.html")); string(b) != "hi" {
		t.Fatalf("extracted %q", b)
	}
	if code := runCLI(t, env, "vm", "cp", "dev:/root/www", "-"); code != 0 {
		t.Fatalf("cp out -: %d %s", code, errb)
	}
	var names []string
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != "www/,www/index.html" {
		t.Errorf("stdout archive %v", names)
	}
}

func TestVMCpAndLogsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"vm", "cp", "only-one"},
		{"vm", "cp", "a", "b"},
		{"vm", "cp", "dev:a", "dev:b"},
		{"vm", "logs"},
		{"vm", "logs", "dev", "--tail", "-1"},
	} {
		env, _, errb := newEnv(t, func(context.Context) (net.Conn, error) {
			t.Fatalf("%v reached the daemon", args)
			return nil, nil
		}, "")
		if code := runCLI(t, env, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb)
		}
	}
}

func TestVMLogsPassesBytesToAPipe(t *testing.T) {
	log := "\x1b[32mOK\x1b[0m boot\r\n\x1b]0;title\x07done\n"
	var got api.LogsParams
	d := startDaemon(t, map[string]rpc.Handler{
		api.MethodVMLogs: func(ctx context.Context, c *rpc.Call) (any, error) {
			c.Decode(&got)
			conn, _, err := c.Upgrade(api.VM{Name: "dev"})
			if err != nil {
				return nil, err
			}
			conn.Write([]byte(log))
			conn.Close()
			return nil, rpc.ErrUpgraded
		},
	})
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "logs", "dev", "-f", "--tail", "3"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	if out.String() != log {
		t.Errorf("a pipe gets the bytes unchanged: %q", out)
	}
	if got != (api.LogsParams{Name: "dev", Tail: 3, Follow: true}) {
		t.Errorf("params %+v", got)
	}
}
