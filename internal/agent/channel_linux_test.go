package agent

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
)

// fakePort behaves like a virtio-serial port: reads return EOF at once
// while no host is connected, and hosts come and go on the same port.
type fakePort struct {
	mu    sync.Mutex
	guest net.Conn // guest end of the connected host, nil when none
	opens atomic.Int32
}

// connect attaches a new host and returns its end.
func (p *fakePort) connect() net.Conn {
	host, guest := net.Pipe()
	p.mu.Lock()
	p.guest = guest
	p.mu.Unlock()
	return host
}

func (p *fakePort) current() net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.guest
}

func (p *fakePort) drop(g net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.guest == g {
		p.guest = nil
	}
}

func (p *fakePort) open() (io.ReadWriteCloser, error) {
	p.opens.Add(1)
	return &portHandle{port: p}, nil
}

type portHandle struct {
	port   *fakePort
	closed atomic.Bool
}

func (h *portHandle) Read(b []byte) (int, error) {
	if h.closed.Load() {
		return 0, os.ErrClosed
	}
	g := h.port.current()
	if g == nil {
		return 0, io.EOF
	}
	n, err := g.Read(b)
	if err != nil {
		h.port.drop(g)
		return n, io.EOF
	}
	return n, nil
}

func (h *portHandle) Write(b []byte) (int, error) {
	if g := h.port.current(); g != nil && !h.closed.Load() {
		return g.Write(b)
	}
	return 0, io.ErrClosedPipe
}

func (h *portHandle) Close() error {
	if h.closed.Swap(true) {
		return nil
	}
	// Unblock a session still reading (test teardown).
	if g := h.port.current(); g != nil {
		g.SetDeadline(time.Unix(1, 0))
	}
	return nil
}

// TestSerialReconnect serves a port across two host connections, with a
// wait for a host (EOF reads) before each.
func TestSerialReconnect(t *testing.T) {
	port := &fakePort{}
	var logs syncBuffer
	srv := &Server{Log: newConsoleLogger(&logs)}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		srv.serveChannel(ctx, port.open)
		close(served)
	}()
	for i := range 2 {
		time.Sleep(3 * noHostPoll) // the agent polls an empty port meanwhile
		c, err := client.Connect(testCtx(t), port.connect())
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if _, err := c.Ping(testCtx(t)); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		c.Close()
	}
	cancel()
	<-served
	if n := port.opens.Load(); n < 2 {
		t.Fatalf("port opened %d times, want a reopen per session", n)
	}
	if got := strings.Count(logs.String(), "host connected"); got != 2 {
		t.Fatalf("%d sessions logged:\n%s", got, logs.String())
	}
}

func TestNewHelloIsLogged(t *testing.T) {
	var logs syncBuffer
	c := connectAgent(t, &Server{Log: newConsoleLogger(&logs)}, []byte(proto.HelloPrefix+"stale\n"))
	if _, err := c.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "host started a new session") {
		t.Fatalf("restart path not taken:\n%s", logs.String())
	}
}

func TestFindSerialPort(t *testing.T) {
	sys := t.TempDir()
	for name, port := range map[string]string{"vport0p1": "org.qemu.guest_agent.0", "vport0p2": proto.SerialPortName} {
		os.MkdirAll(filepath.Join(sys, name), 0o755)
		os.WriteFile(filepath.Join(sys, name, "name"), []byte(port+"\n"), 0o644)
	}
	dev, err := findSerialPort(sys, proto.SerialPortName)
	if err != nil || dev != "/dev/vport0p2" {
		t.Fatalf("dev %q err %v", dev, err)
	}
	if _, err := findSerialPort(sys, "other"); err == nil {
		t.Fatal("found a port that does not exist")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
