package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
)

// connectAgent serves one in-process agent connection over a pipe and
// returns a connected client. preamble is written by the host before the
// handshake, as stale bytes in a channel would be.
func connectAgent(t *testing.T, srv *Server, preamble []byte) *client.Client {
	t.Helper()
	host, guest := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		srv.ServeConn(ctx, guest)
		close(served)
	}()
	if len(preamble) > 0 {
		if _, err := host.Write(preamble); err != nil {
			t.Fatal(err)
		}
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	c, err := client.Connect(cctx, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-served
	})
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPingAfterGarbage(t *testing.T) {
	garbage := append(bytes.Repeat([]byte{0, 1, 2, 0xff}, 5000), "\nBANGER-READY old 0\npartial"...)
	c := connectAgent(t, &Server{}, garbage)
	info, err := c.Ping(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Protocol != proto.ProtocolVersion || info.Version != Version || info.KernelRelease == "" {
		t.Fatalf("bad info %+v", info)
	}
	if c.AgentVersion() != Version {
		t.Fatalf("handshake version %q", c.AgentVersion())
	}
}

func TestExecStdio(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	var stdout, stderr bytes.Buffer
	req := proto.ExecRequest{
		Argv: []string{"sh", "-c", "echo out; echo err >&2; cat; echo \"$FOO\"; pwd; exit 3"},
		Env:  []string{"FOO=bar"},
		Dir:  t.TempDir(),
	}
	st, err := c.Exec(testCtx(t), req, strings.NewReader("input data\n"), &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := "out\ninput data\nbar\n" + req.Dir + "\n"
	if st.Code != 3 || st.Signal != "" || stdout.String() != want || stderr.String() != "err\n" {
		t.Fatalf("status %+v stdout %q stderr %q", st, stdout.String(), stderr.String())
	}
}

func TestExecLargeStreams(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	var stdout bytes.Buffer
	req := proto.ExecRequest{Argv: []string{"head", "-c", "3000000", "/dev/zero"}, Dir: "/"}
	st, err := c.Exec(testCtx(t), req, nil, &stdout, nil)
	if err != nil || st.Code != 0 || stdout.Len() != 3000000 {
		t.Fatalf("status %+v err %v, %d bytes", st, err, stdout.Len())
	}
	stdout.Reset()
	in := bytes.NewReader(bytes.Repeat([]byte("0123456789"), 300000))
	st, err = c.Exec(testCtx(t), proto.ExecRequest{Argv: []string{"wc", "-c"}, Dir: "/"}, in, &stdout, nil)
	if err != nil || st.Code != 0 || strings.TrimSpace(stdout.String()) != "3000000" {
		t.Fatalf("status %+v err %v, stdout %q", st, err, stdout.String())
	}
}

func TestExecNotFound(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	_, err := c.Exec(testCtx(t), proto.ExecRequest{Argv: []string{"banger-no-such-command"}}, nil, nil, nil)
	var re *client.RequestError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "banger-no-such-command: command not found") {
		t.Fatalf("err = %v", err)
	}
	_, err = c.Exec(testCtx(t), proto.ExecRequest{Argv: []string{"/nonexistent/bin"}, Dir: "/"}, nil, nil, nil)
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
	// The session is still usable after a refused request.
	if _, err := c.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestExecSignal(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	conn, err := c.OpenExec(testCtx(t), proto.ExecRequest{Argv: []string{"sleep", "30"}, Dir: "/"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctl := make(chan proto.Frame, 1)
	ctl <- proto.SignalFrame(byte(unix.SIGTERM))
	st, err := proto.PumpExec(conn, nil, io.Discard, io.Discard, ctl)
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 143 || st.Signal != "SIGTERM" {
		t.Fatalf("status %+v", st)
	}
}

// TestHostCloseKillsProcess closes the stream mid-run: the agent must
// kill the process group rather than leave it running.
func TestHostCloseKillsProcess(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	conn, err := c.OpenExec(testCtx(t), proto.ExecRequest{Argv: []string{"sh", "-c", "echo $$; exec sleep 30"}, Dir: "/"})
	if err != nil {
		t.Fatal(err)
	}
	typ, p, err := proto.ReadFrame(conn)
	if err != nil || typ != proto.FrameStdout {
		t.Fatalf("frame %d %q %v", typ, p, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(p)))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	waitGone(t, pid)
}

func TestExecContextCancelKills(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	pr, pw := io.Pipe()
	defer pw.Close()
	pids := make(chan int, 1)
	go func() {
		// The shell reports its pid, then the host gives up.
		buf := make([]byte, 64)
		n, _ := pr.Read(buf)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
		pids <- pid
		cancel()
		io.Copy(io.Discard, pr)
	}()
	_, err := c.Exec(ctx, proto.ExecRequest{Argv: []string{"sh", "-c", "echo $$; exec sleep 30"}, Dir: "/"}, nil, pw, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	waitGone(t, <-pids)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for unix.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Errorf("process %d still running", pid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShutdown(t *testing.T) {
	powered := make(chan struct{})
	c := connectAgent(t, &Server{PowerOff: func() { close(powered) }}, nil)
	if err := c.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-powered:
	case <-time.After(5 * time.Second):
		t.Fatal("PowerOff not called")
	}
	refusing := connectAgent(t, &Server{}, nil)
	var re *client.RequestError
	if err := refusing.Shutdown(testCtx(t)); !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectRespectsContext(t *testing.T) {
	host, guest := net.Pipe()
	defer guest.Close()
	go io.Copy(io.Discard, guest) // a guest that never answers
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := client.Connect(ctx, host); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("Connect ignored its context")
	}
}

func TestSessionEndClosesDone(t *testing.T) {
	host, guest := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&Server{}).ServeConn(ctx, guest)
	c, err := client.Connect(testCtx(t), host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel() // the agent side goes away
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the agent went away")
	}
	if _, err := c.Ping(testCtx(t)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}

// signalWriter collects output and closes seen once it contains want.
type signalWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// A TTY exec runs on a pseudo-terminal of the asked size, as the
// session's controlling terminal; stderr comes through the terminal too;
// a resize reaches the process as SIGWINCH with the new size; stdin EOF
// does not hang the terminal up.
func TestExecTTY(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	conn, err := c.OpenExec(testCtx(t), proto.ExecRequest{Dir: "/", TTY: &proto.WinSize{Rows: 33, Cols: 101},
		Argv: []string{"sh", "-c", `tty; stty size; test -t 0 && echo stdin-is-tty; echo to-stderr >&2
trap 'stty size; exit 7' WINCH; echo ready; while :; do sleep 0.05; done`}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out := &signalWriter{want: "ready", seen: make(chan struct{})}
	var errb strings.Builder
	ctl := make(chan proto.Frame, 1)
	go func() {
		<-out.seen
		ctl <- proto.ResizeFrame(proto.WinSize{Rows: 40, Cols: 120})
	}()
	st, err := proto.PumpExec(conn, strings.NewReader(""), out, &errb, ctl)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if st.Code != 7 || errb.Len() != 0 {
		t.Fatalf("status %+v, stderr %q, stdout %q", st, errb.String(), got)
	}
	for _, want := range []string{"/dev/pts/", "33 101\r\n", "stdin-is-tty\r\n", "to-stderr\r\n", "40 120\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("stdout lacks %q:\n%q", want, got)
		}
	}
}
