package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/rpc"
)

// fakeDaemon is an rpc.Server with stub handlers on a unix socket in
// t.TempDir(); it records which methods were called.
type fakeDaemon struct {
	mu    sync.Mutex
	calls []string
	dial  func(context.Context) (net.Conn, error)
}

func (f *fakeDaemon) methods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func startDaemon(t *testing.T, handlers map[string]rpc.Handler) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{}
	wrapped := map[string]rpc.Handler{}
	for m, h := range handlers {
		wrapped[m] = func(ctx context.Context, c *rpc.Call) (any, error) {
			f.mu.Lock()
			f.calls = append(f.calls, m)
			f.mu.Unlock()
			return h(ctx, c)
		}
	}
	sock := filepath.Join(t.TempDir(), "bangerd.sock")
	l, err := rpc.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rpc.Server{Handlers: wrapped, Log: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	t.Cleanup(func() {
		l.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("fake daemon did not stop")
		}
	})
	f.dial = func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}
	return f
}

// newEnv builds an Env whose client dials dial.
func newEnv(t *testing.T, dial func(context.Context) (net.Conn, error), stdin string) (*cli.Env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	paths := config.Paths{ConfigDir: filepath.Join(dir, "config"), StateDir: filepath.Join(dir, "state"),
		CacheDir: filepath.Join(dir, "cache"), RuntimeDir: filepath.Join(dir, "run")}
	var out, errb bytes.Buffer
	return &cli.Env{In: strings.NewReader(stdin), Out: &out, Err: &errb, Paths: paths,
		Client: &client.Client{Paths: paths, DialForTest: dial}}, &out, &errb
}

func runCLI(t *testing.T, env *cli.Env, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return cli.Run(ctx, env, args)
}

func TestUsageErrorsNeverReachTheDaemon(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"vm", "run", "--rm", "--vcpu", "0", "--", "true"}, "--vcpu 0: must be at least 1"},
		{[]string{"vm", "run", "--memory", "100", "--", "true"}, "--memory 100: must be at least 256 MiB"},
		{[]string{"vm", "create", "--vcpu", "0"}, "--vcpu 0: must be at least 1"},
		{[]string{"vm", "create", "--vcpu", "-3"}, "--vcpu -3"},
		{[]string{"vm", "create", "--memory", "16"}, "--memory 16: must be at least 256 MiB"},
		{[]string{"vm", "create", "--vcpu", "two"}, "invalid argument"},
		{[]string{"vm", "create", "--frobnicate"}, "unknown flag: --frobnicate"},
		{[]string{"vm", "create", "extra"}, "expected no arguments"},
		{[]string{"vm", "show"}, "expected one VM name"},
		{[]string{"vm", "show", "a", "b"}, "expected one VM name"},
		{[]string{"vm", "ls", "x"}, "expected no arguments"},
		{[]string{"vm", "delete"}, "expected one VM name"},
		{[]string{"vm", "ssh"}, "expected a VM name"},
		{[]string{"image", "build", "a", "b"}, "at most 1 argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			dialed := false
			env, out, errb := newEnv(t, func(context.Context) (net.Conn, error) {
				dialed = true
				return nil, errors.New("must not dial")
			}, "")
			if code := runCLI(t, env, tt.args...); code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d (stderr %q)", code, cli.ExitUsage, errb.String())
			}
			if !strings.HasPrefix(errb.String(), "banger: ") || !strings.Contains(errb.String(), tt.msg) {
				t.Fatalf("stderr %q, want banger: ... %q", errb.String(), tt.msg)
			}
			if dialed || out.Len() != 0 {
				t.Fatalf("dialed=%v stdout=%q: usage errors must fail before any call", dialed, out.String())
			}
		})
	}
}

var sampleVMs = []api.VM{
	{ID: "0f3c", Name: "dev", State: "running", Image: "debian-bookworm", Kernel: "debian-cloud", VMM: "qemu",
		VCPU: 2, MemoryMiB: 2048, DiskBytes: 8 << 30, IP: "10.77.0.2", MAC: "02:aa:00:00:00:02",
		CreatedAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), PID: 4242, StartedFrom: "snapshot 0123456789ab", ConsoleLog: "/s/vms/0f3c/console.log", Dir: "/s/vms/0f3c",
		LastError: "boot timed out\nfull log in console.log"},
	{ID: "9a1b", Name: "scratch", State: "stopped", Image: "debian-bookworm", Kernel: "debian-cloud", VMM: "firecracker",
		VCPU: 1, MemoryMiB: 512, DiskBytes: 4 << 30, IP: "10.77.0.3", CreatedAt: time.Now().Add(-3 * time.Hour)},
}

// vmHandlers stubs vm.list and vm.show; shown receives each name asked for.
func vmHandlers(shown chan<- string) map[string]rpc.Handler {
	return map[string]rpc.Handler{
		api.MethodVMList: func(ctx context.Context, c *rpc.Call) (any, error) { return sampleVMs, nil },
		api.MethodVMShow: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.NameParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			select {
			case shown <- p.Name:
			default:
			}
			for _, v := range sampleVMs {
				if v.Name == p.Name {
					return v, nil
				}
			}
			return nil, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no VM named %q", p.Name)}
		},
	}
}

func TestVMListJSON(t *testing.T) {
	shown := make(chan string, 4)
	d := startDaemon(t, vmHandlers(shown))
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "ls", "--json"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got []api.VM
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	for i := range got { // compare instants, not monotonic clocks
		got[i].CreatedAt = got[i].CreatedAt.UTC().Round(0)
	}
	want := append([]api.VM(nil), sampleVMs...)
	for i := range want {
		want[i].CreatedAt = want[i].CreatedAt.UTC().Round(0)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("vm ls --json = %+v\nwant %+v", got, want)
	}
	if m := d.methods(); !reflect.DeepEqual(m, []string{api.MethodVMList}) {
		t.Fatalf("daemon calls = %v", m)
	}
}

func TestVMListTable(t *testing.T) {
	shown := make(chan string, 4)
	d := startDaemon(t, vmHandlers(shown))
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "list"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want header + 2:\n%s", len(lines), out.String())
	}
	wantFields := [][]string{
		{"NAME", "STATE", "IMAGE", "ADDRESS", "VCPU", "MEMORY", "AGE"},
		{"dev", "running", "debian-bookworm", "10.77.0.2", "2", "2", "GiB"},
		{"scratch", "stopped", "debian-bookworm", "10.77.0.3", "1", "512", "MiB", "3h"},
	}
	for i, w := range wantFields {
		f := strings.Fields(lines[i])
		if len(f) < len(w) || !reflect.DeepEqual(f[:len(w)], w) {
			t.Errorf("line %d = %q, want fields starting %v", i, lines[i], w)
		}
	}
}

func TestVMShowTable(t *testing.T) {
	shown := make(chan string, 4)
	d := startDaemon(t, vmHandlers(shown))
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "show", "dev"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if name := <-shown; name != "dev" {
		t.Fatalf("daemon was asked for %q, want dev", name)
	}
	rows := map[string]string{}
	var order []string
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("line without a key: %q", line)
		}
		rows[k] = strings.TrimSpace(v)
		order = append(order, k)
	}
	want := map[string]string{
		"name": "dev", "id": "0f3c", "state": "running", "image": "debian-bookworm", "kernel": "debian-cloud",
		"vmm": "qemu", "vcpu": "2", "memory": "2 GiB", "disk": "8 GiB", "address": "10.77.0.2",
		"mac": "02:aa:00:00:00:02", "created": "2025-03-01T12:00:00Z", "console log": "/s/vms/0f3c/console.log",
		"dir": "/s/vms/0f3c", "vmm pid": "4242", "started from": "snapshot 0123456789ab", "last error": "boot timed out",
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("vm show rows = %v\nwant %v", rows, want)
	}
	if order[0] != "name" || order[len(order)-1] != "last error" {
		t.Fatalf("row order = %v", order)
	}
}

func TestDaemonErrorIsPrinted(t *testing.T) {
	shown := make(chan string, 4)
	d := startDaemon(t, vmHandlers(shown))
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "show", "ghost"); code != cli.ExitError {
		t.Fatalf("exit %d, want %d", code, cli.ExitError)
	}
	if got, want := errb.String(), "banger: no VM named \"ghost\"\n"; got != want {
		t.Fatalf("stderr = %q, want %q", got, want)
	}
	if out.Len() != 0 {
		t.Fatalf("stdout = %q, want nothing", out.String())
	}
}

func TestDaemonNotRunningHint(t *testing.T) {
	env, _, errb := newEnv(t, func(context.Context) (net.Conn, error) {
		return nil, fmt.Errorf("%w (socket /nowhere)", client.ErrNotRunning)
	}, "")
	if code := runCLI(t, env, "vm", "ls"); code != cli.ExitError {
		t.Fatalf("exit %d, want %d", code, cli.ExitError)
	}
	if !strings.Contains(errb.String(), "daemon is not running") || !strings.Contains(errb.String(), "banger daemon start") {
		t.Fatalf("stderr %q lacks the start hint", errb.String())
	}
}

func TestDaemonStatus(t *testing.T) {
	d := startDaemon(t, map[string]rpc.Handler{api.MethodStatus: func(ctx context.Context, c *rpc.Call) (any, error) {
		return api.Status{PID: 99, Version: "v0.1.0", APIVersion: api.Version, Socket: "/run/b.sock",
			StateDir: "/state", VMM: "qemu", VMMReason: "vmm = qemu in config.toml", Accel: "kvm", Running: 3}, nil
	}})
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "daemon", "status"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"bangerd v0.1.0 running (pid 99)", "socket: /run/b.sock", "vmm:    qemu (vmm = qemu in config.toml), kvm", "running VMs: 3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestImageShowRuntime: an image's runtime config is shown, words quoted
// as a shell would need them, and under "runtime" in --json.
func TestImageShowRuntime(t *testing.T) {
	info := api.ImageInfo{Image: api.Image{Name: "go", Path: "/i/go.ext4", Source: "oci golang:1.22"}, Init: "none",
		Runtime: api.ImageRuntime{Env: []string{"PATH=/usr/local/go/bin:/usr/bin", "MSG=hi there"}, WorkingDir: "/go",
			Entrypoint: []string{"/entry.sh"}, Cmd: []string{"sh", "-c", "echo it's $HOME"}}}
	d := startDaemon(t, map[string]rpc.Handler{api.MethodImageShow: func(ctx context.Context, c *rpc.Call) (any, error) { return info, nil }})
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "image", "show", "go"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		k, v, _ := strings.Cut(line, ":")
		rows[k] = strings.TrimSpace(v)
	}
	for k, want := range map[string]string{
		"env": "PATH=/usr/local/go/bin:/usr/bin 'MSG=hi there'", "workdir": "/go",
		"entrypoint": "/entry.sh", "cmd": `sh -c 'echo it'\''s $HOME'`,
	} {
		if rows[k] != want {
			t.Errorf("image show %s: %q, want %q\n%s", k, rows[k], want, out.String())
		}
	}
	env, out, errb = newEnv(t, d.dial, "")
	if code := runCLI(t, env, "image", "show", "go", "--json"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got struct{ Runtime api.ImageRuntime }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || !reflect.DeepEqual(got.Runtime, info.Runtime) {
		t.Errorf("image show --json runtime %+v (%v):\n%s", got.Runtime, err, out.String())
	}
}
