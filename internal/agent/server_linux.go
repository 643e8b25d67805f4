package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// Server answers the host's requests. One Server serves any number of
// channels; each channel carries one yamux session at a time.
type Server struct {
	Log *slog.Logger
	// PowerOff is called once a shutdown request has been acknowledged.
	// Nil refuses shutdown requests (tests).
	PowerOff func()
	// Guest says the server is a VM's agent: only then does reidentify
	// change the system's hostname, address, host keys and machine-id. A
	// server on a host (tests, the fake VMM) refuses it, so that no test
	// can rename its host.
	Guest bool
	// procs starts and waits for exec'd processes; nil means os/exec. As
	// PID 1 it is the reaper, which must see every exit status.
	procs children
}

// requestTimeout bounds how long a new stream may take to send its
// request line, so that a confused host cannot pin goroutines forever.
const requestTimeout = time.Minute

// ServeConn serves one connection (a vsock connection, a test pipe): it
// waits for the host's HELLO, answers READY, then serves a yamux session
// until it ends. It closes conn before returning.
func (s *Server) ServeConn(ctx context.Context, conn io.ReadWriteCloser) error {
	br := bufio.NewReader(conn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	nonce, err := proto.ScanForLine(br, proto.HelloPrefix)
	if err != nil {
		conn.Close()
		return fmt.Errorf("wait for hello: %w", err)
	}
	return s.serveSession(ctx, conn, br, nonce)
}

// serveSession answers the HELLO that carried nonce and serves yamux over
// br (which may already hold bytes the host sent after its HELLO) and
// conn. When the host starts over with a new HELLO before speaking yamux,
// it answers that one on the same connection.
func (s *Server) serveSession(ctx context.Context, conn io.ReadWriteCloser, br *bufio.Reader, nonce string) error {
	defer conn.Close()
	for {
		nonce = firstField(nonce)
		if _, err := fmt.Fprintf(conn, "%s%s %s\n", proto.ReadyPrefix, nonce, Version); err != nil {
			return fmt.Errorf("send ready: %w", err)
		}
		s.log().Info("host connected")
		filter := &helloFilter{r: br, nonce: nonce}
		sess, err := yamux.Server(sessionConn{filter, conn}, s.yamuxConfig())
		if err != nil {
			return err
		}
		s.acceptStreams(ctx, sess)
		next := filter.restartNonce()
		if next == "" {
			s.log().Info("host disconnected")
			return nil
		}
		s.log().Info("host started a new session")
		nonce = next
	}
}

func (s *Server) acceptStreams(ctx context.Context, sess *yamux.Session) {
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go s.handleStream(st)
	}
}

func (s *Server) yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	return cfg
}

// sessionConn is the byte stream under a yamux session: reads go through
// the handshake's buffered reader so no byte the host sent is lost.
type sessionConn struct {
	filter *helloFilter
	conn   io.ReadWriteCloser
}

func (c sessionConn) Read(p []byte) (int, error)  { return c.filter.Read(p) }
func (c sessionConn) Write(p []byte) (int, error) { return c.conn.Write(p) }

// Close keeps the channel open when the session ended only because a new
// HELLO arrived: the next session runs on it.
func (c sessionConn) Close() error {
	if c.filter.restartNonce() != "" {
		return nil
	}
	return c.conn.Close()
}

// errNewHello ends a session whose host sent a HELLO with another nonce.
var errNewHello = errors.New("host sent a new hello")

// helloFilter sits between the channel and yamux. The host resends HELLO
// until it sees READY, so copies of the answered HELLO may precede the
// first yamux frame (whose first byte, the version, is 0): they are
// dropped. A HELLO with another nonce means a new host is starting over
// (a stale HELLO from a vanished host was answered first): the session
// ends and the caller answers the new one.
type helloFilter struct {
	r       *bufio.Reader
	nonce   string
	passing bool // a yamux byte was seen: no more filtering

	mu      sync.Mutex
	restart string
}

func (f *helloFilter) Read(p []byte) (int, error) {
	for !f.passing {
		b, err := f.r.Peek(1)
		if err != nil {
			return 0, err
		}
		if b[0] != proto.HelloPrefix[0] {
			f.passing = true
			break
		}
		line, err := f.r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		_, rest, ok := strings.Cut(line, proto.HelloPrefix)
		if n := firstField(rest); ok && n != "" && n != f.nonce {
			f.mu.Lock()
			f.restart = n
			f.mu.Unlock()
			return 0, errNewHello
		}
	}
	return f.r.Read(p)
}

func (f *helloFilter) restartNonce() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restart
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// opHandler serves one request of an op registered in ops; it owns the
// stream (reply line, then any op-specific bytes).
type opHandler func(s *Server, st net.Conn, req proto.Request)

// ops holds the ops beyond ping/exec/shutdown. Each lives in its own file
// and registers itself from init, so features do not edit this switch.
var ops = map[string]opHandler{}

// handleStream serves the one request a stream carries.
func (s *Server) handleStream(st net.Conn) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(requestTimeout))
	var req proto.Request
	if err := proto.ReadLine(st, &req); err != nil {
		return
	}
	st.SetReadDeadline(time.Time{})
	switch req.Op {
	case proto.OpPing:
		info := s.info()
		proto.WriteLine(st, proto.Response{OK: true, Info: &info})
	case proto.OpExec:
		s.handleExec(st, req.Exec)
	case proto.OpShutdown:
		s.handleShutdown(st)
	default:
		if h, ok := ops[req.Op]; ok {
			h(s, st, req)
			return
		}
		proto.WriteLine(st, proto.Response{Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
}

// handleShutdown acknowledges, waits until the host has closed its side
// (so the reply is not lost with the VM), then powers off. A failed reply
// does not cancel the power-off: yamux can report a write as failed when
// the session ends right after it went out, and the host asked anyway.
func (s *Server) handleShutdown(st net.Conn) {
	if s.PowerOff == nil {
		proto.WriteLine(st, proto.Response{Error: "shutdown is not available"})
		return
	}
	proto.WriteLine(st, proto.Response{OK: true})
	st.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, st)
	s.log().Info("shutdown requested by the host")
	s.PowerOff()
}

func (s *Server) info() proto.Info {
	info := proto.Info{Version: Version, Protocol: proto.ProtocolVersion, PID1: pid1Name()}
	info.Hostname, _ = os.Hostname()
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		info.KernelRelease = unix.ByteSliceToString(uts.Release[:])
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		info.UptimeSeconds, _ = strconv.ParseFloat(firstField(string(b)), 64)
	}
	return info
}

// pid1Name is "agent" when this process is init, else the name of PID 1's
// program. The executable is read rather than comm: systemd started as
// /sbin/init is called "init" until it renames itself.
func pid1Name() string {
	if os.Getpid() == 1 {
		return "agent"
	}
	if exe, err := os.Readlink("/proc/1/exe"); err == nil {
		// "init (deleted)": the agent's init, about to exec the image's.
		return filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	}
	b, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}
