package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/rpc"
)

// listenIn serves daemon.status on RuntimeDir/bangerd.sock and counts
// the connections it receives.
func listenIn(t *testing.T, rt string) *atomic.Int32 {
	t.Helper()
	l, err := rpc.Listen(filepath.Join(rt, "bangerd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	srv := &rpc.Server{Log: slog.New(slog.DiscardHandler), Handlers: map[string]rpc.Handler{
		api.MethodStatus: func(context.Context, *rpc.Call) (any, error) { n.Add(1); return api.Status{PID: 1}, nil },
	}}
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { l.Close() })
	return &n
}

func runtimeDir(t *testing.T) config.Paths {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "bgc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	p := config.Paths{RuntimeDir: filepath.Join(base, "run"), StateDir: filepath.Join(base, "state")}
	if err := p.EnsureRuntimeDir(); err != nil {
		t.Fatal(err)
	}
	return p
}

// A runtime directory another user could have made (the /tmp fallback
// when XDG_RUNTIME_DIR is unset) is refused before anything is sent.
func TestClientRefusesAnUnsafeRuntimeDir(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown the directory to another user")
	}
	for _, c := range []struct {
		name  string
		spoil func(p config.Paths) error
	}{
		{"owned by another uid", func(p config.Paths) error { return os.Chown(p.RuntimeDir, 4242, 4242) }},
		{"mode 0777", func(p config.Paths) error { return os.Chmod(p.RuntimeDir, 0o777) }},
		{"a symlink", func(p config.Paths) error {
			real := p.RuntimeDir + ".real"
			if err := os.Rename(p.RuntimeDir, real); err != nil {
				return err
			}
			return os.Symlink(real, p.RuntimeDir)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := runtimeDir(t)
			served := listenIn(t, p.RuntimeDir)
			if err := c.spoil(p); err != nil {
				t.Fatal(err)
			}
			cl := &Client{Paths: p, AutoStart: true, DaemonBin: "/nonexistent/bangerd"}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := cl.Call(ctx, api.MethodStatus, nil, nil, nil)
			if !errors.Is(err, config.ErrUnsafeRuntimeDir) {
				t.Fatalf("Call = %v, want ErrUnsafeRuntimeDir", err)
			}
			if _, err := cl.Status(ctx); !errors.Is(err, config.ErrUnsafeRuntimeDir) {
				t.Fatalf("Status = %v, want ErrUnsafeRuntimeDir", err)
			}
			if n := served.Load(); n != 0 {
				t.Fatalf("the socket got %d calls", n)
			}
		})
	}
}

func TestClientTalksThroughASafeRuntimeDir(t *testing.T) {
	p := runtimeDir(t)
	served := listenIn(t, p.RuntimeDir)
	st, err := (&Client{Paths: p}).Status(context.Background())
	if err != nil || st.PID != 1 || served.Load() != 1 {
		t.Fatalf("Status = %+v %v (%d calls)", st, err, served.Load())
	}
	// No directory at all: the daemon is simply not running.
	p.RuntimeDir += "-missing"
	if _, err := (&Client{Paths: p}).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Status without a runtime dir = %v, want ErrNotRunning", err)
	}
}

func TestAllowedPeer(t *testing.T) {
	for _, c := range []struct {
		uid, self int
		ok        bool
	}{{1000, 1000, true}, {0, 1000, true}, {0, 0, true}, {1001, 1000, false}, {1000, 0, false}} {
		err := allowedPeer(c.uid, 77, c.self)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrForeignPeer)) {
			t.Errorf("peer uid %d, self %d: %v", c.uid, c.self, err)
		}
	}
	// The real credentials of a real socket: ours.
	a, b, err := unixPair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	if err := checkPeer(a, os.Getuid()); err != nil {
		t.Fatalf("checkPeer of our own socket: %v", err)
	}
	if err := checkPeer(a, os.Getuid()+1); os.Getuid() != 0 && !errors.Is(err, ErrForeignPeer) {
		t.Fatalf("checkPeer with another self: %v", err)
	}
}

func unixPair() (*net.UnixConn, *net.UnixConn, error) {
	dir, err := os.MkdirTemp("/tmp", "bgp")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	a, err := net.DialUnix("unix", nil, l.Addr().(*net.UnixAddr))
	if err != nil {
		return nil, nil, err
	}
	b, err := l.AcceptUnix()
	return a, b, err
}
