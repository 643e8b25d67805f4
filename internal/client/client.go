// Package client is the CLI's typed view of the daemon: one method per RPC,
// starting bangerd on demand and turning dial failures into friendly
// errors.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/rpc"
)

// Client talks to bangerd.
type Client struct {
	Paths config.Paths
	// AutoStart starts bangerd when it is not running.
	AutoStart bool
	// DaemonBin overrides where bangerd is found (beside this binary, then PATH).
	DaemonBin string
	// DialForTest replaces the unix-socket dial in tests.
	DialForTest func(ctx context.Context) (net.Conn, error)
	// Remote, when set, is the daemon this client talks to: on another
	// machine, over ssh (remote.go). Paths then only place the ssh
	// master socket.
	Remote *Remote
	// Resolve, when set and Remote is not, says at the first dial where
	// the daemon is (the CLI's --host, BANGER_HOST or context, read also
	// where no pre-run has set Remote: shell completion).
	Resolve func() (*Remote, error)
}

// resolve sets Remote from Resolve, once.
func (c *Client) resolve() error {
	if c.Remote != nil || c.Resolve == nil {
		return nil
	}
	r, err := c.Resolve()
	if err != nil {
		return err
	}
	c.Remote, c.Resolve = r, nil
	return nil
}

// ErrNotRunning means no daemon answers on the socket.
var ErrNotRunning = errors.New("daemon is not running")

func (c *Client) dialOnce(ctx context.Context) (net.Conn, error) {
	if err := c.resolve(); err != nil {
		return nil, err
	}
	if c.DialForTest != nil {
		return c.DialForTest(ctx)
	}
	if c.Remote != nil {
		return c.dialRemote(ctx, false)
	}
	return c.dialLocal(ctx)
}

func (c *Client) dialLocal(ctx context.Context) (net.Conn, error) {
	// Nothing is sent to a socket in a directory someone else could have
	// made (the /tmp fallback) or to a peer that is not us or root: a
	// fake daemon there could answer with values that reach an argv.
	if err := c.Paths.CheckRuntimeDir(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (socket %s)", ErrNotRunning, c.Paths.Socket())
		}
		return nil, fmt.Errorf("refusing to contact the daemon: %w", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Paths.Socket())
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (socket %s)", ErrNotRunning, c.Paths.Socket())
		}
		return nil, fmt.Errorf("connect to daemon at %s: %w", c.Paths.Socket(), err)
	}
	if err := checkPeer(conn, os.Getuid()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("refusing to contact the daemon at %s: %w", c.Paths.Socket(), err)
	}
	return conn, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	if err := c.resolve(); err != nil {
		return nil, err
	}
	if c.Remote != nil && c.DialForTest == nil {
		// The remote dial-stdio starts its daemon on demand.
		return c.dialRemote(ctx, c.AutoStart)
	}
	conn, err := c.dialOnce(ctx)
	if err == nil || !c.AutoStart || !errors.Is(err, ErrNotRunning) {
		return conn, err
	}
	if err := c.StartDaemon(ctx); err != nil {
		return nil, err
	}
	return c.dialOnce(ctx)
}

// DialLocal connects to the daemon on this machine, ignoring Remote,
// starting it first when start and it is not running (`banger daemon
// dial-stdio` splices a remote client to it).
func (c *Client) DialLocal(ctx context.Context, start bool) (net.Conn, error) {
	conn, err := c.dialLocal(ctx)
	if err == nil || !start || !errors.Is(err, ErrNotRunning) {
		return conn, err
	}
	if err := c.startLocal(ctx); err != nil {
		return nil, err
	}
	return c.dialLocal(ctx)
}

// DaemonPath finds the bangerd binary.
func (c *Client) DaemonPath() (string, error) {
	if c.DaemonBin != "" {
		return c.DaemonBin, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "bangerd")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("bangerd")
	if err != nil {
		return "", errors.New("bangerd not found beside banger or on PATH: run `make build` or install both binaries")
	}
	return p, nil
}

// StartDaemon launches bangerd detached and waits until it answers.
// Concurrent CLIs serialise on a start lock, so only one spawns a daemon
// and the others find it running.
// With Remote, the remote dial-stdio starts that machine's daemon.
func (c *Client) StartDaemon(ctx context.Context) error {
	if err := c.resolve(); err != nil {
		return err
	}
	if c.Remote != nil && c.DialForTest == nil {
		conn, err := c.dialRemote(ctx, true)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	return c.startLocal(ctx)
}

func (c *Client) startLocal(ctx context.Context) error {
	bin, err := c.DaemonPath()
	if err != nil {
		return err
	}
	if err := c.Paths.EnsureRuntimeDir(); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(c.Paths.RuntimeDir, "bangerd.start.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock daemon start: %w", err)
	}
	if conn, err := c.dialLocal(ctx); err == nil {
		conn.Close()
		return nil
	}
	if err := os.MkdirAll(c.Paths.StateDir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(c.Paths.DaemonLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	var logStart int64
	if fi, err := logf.Stat(); err == nil {
		logStart = fi.Size()
	}
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := c.dialLocal(ctx); err == nil {
			conn.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("bangerd exited during start-up (%v): %s", err, startupReason(c.Paths.DaemonLog(), logStart))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("bangerd did not answer within 15s: %s", startupReason(c.Paths.DaemonLog(), logStart))
}

// startupReason is what the daemon wrote to its log during this start:
// its "bangerd: …" line when it printed one (its fatal error), else the
// last few lines, with where the whole log is.
func startupReason(log string, from int64) string {
	f, err := os.Open(log)
	if err != nil {
		return "see " + log
	}
	defer f.Close()
	const max = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size()-from > max {
		from = fi.Size() - max
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, from, max))
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, strings.Map(printable, l))
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if reason, ok := strings.CutPrefix(lines[i], "bangerd: "); ok {
			return reason + " (log: " + log + ")"
		}
	}
	if len(lines) == 0 {
		return "it wrote nothing to " + log
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "last lines of " + log + ":\n  " + strings.Join(lines, "\n  ")
}

// printable keeps a log line from moving the terminal's cursor or colours.
func printable(r rune) rune {
	if r < 0x20 && r != '\t' || r == 0x7f {
		return '?'
	}
	return r
}

// Call runs a method to completion, decoding its result into out (nil:
// discard it). The CLI uses the typed methods (VMShow, ImagePull, …);
// Call and Stream are for tests and tools that speak the protocol by
// method name.
func (c *Client) Call(ctx context.Context, method string, params, out any, onProgress func(api.Progress)) error {
	conn, err := rpc.Start(ctx, c.dial, method, params)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Wait(ctx, onProgress, out)
}

// Stream is an upgraded call: after the daemon's answer, the raw byte
// stream of the method (exec frames, a copy's tar, a console log). Read
// it through Stream (which may hold bytes buffered with the answer),
// write to it, close it when done.
type Stream struct{ *rpc.Conn }

// Stream starts a streaming method and returns the connection after the
// result line, positioned at the raw stream.
func (c *Client) Stream(ctx context.Context, method string, params, out any, onProgress func(api.Progress)) (*Stream, error) {
	conn, err := rpc.Start(ctx, c.dial, method, params)
	if err != nil {
		return nil, err
	}
	if err := conn.Wait(ctx, onProgress, out); err != nil {
		conn.Close()
		return nil, err
	}
	return &Stream{conn}, nil
}

// call runs method and returns its result as a T.
func call[T any](ctx context.Context, c *Client, method string, params any, onProgress func(api.Progress)) (T, error) {
	var v T
	err := c.Call(ctx, method, params, &v, onProgress)
	return v, err
}

// Status asks the daemon about itself without starting it.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	conn, err := rpc.Start(ctx, c.dialOnce, api.MethodStatus, nil)
	if err != nil {
		return st, err
	}
	defer conn.Close()
	return st, conn.Wait(ctx, nil, &st)
}
