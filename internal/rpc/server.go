package rpc

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"golang.org/x/sys/unix"
)

// ErrUpgraded tells the server the handler took over the connection.
var ErrUpgraded = errors.New("connection upgraded")

// Handler serves one method.
type Handler func(ctx context.Context, c *Call) (any, error)

// Server serves handlers on a unix socket.
type Server struct {
	Handlers map[string]Handler
	Log      *slog.Logger
	// MaxConns bounds the connections served at once (default
	// DefaultMaxConns); one more gets a CodeBusy error and is closed.
	MaxConns int
	// Grace is how long Serve waits, once the listener is closed, for
	// calls in flight (default DefaultGrace); then it ends them (their
	// clients get "daemon stopped") and returns without waiting more.
	Grace time.Duration

	wg    sync.WaitGroup
	mu    sync.Mutex
	calls map[*Call]struct{}
}

// Defaults for Server.
const (
	DefaultMaxConns = 256
	DefaultGrace    = 5 * time.Second
)

// Listen creates the unix socket at path (replacing a stale one) with
// mode 0600.
func Listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	old := unix.Umask(0o177)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return l, nil
}

// Serve accepts connections until l is closed. ctx is the daemon's
// lifetime; a call's context is cancelled when its client disconnects.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	max := cmp.Or(s.MaxConns, DefaultMaxConns)
	slots := make(chan struct{}, max)
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				s.drain()
				return nil
			}
			return err
		}
		ok, pid := peer(conn)
		if !ok {
			conn.Close()
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			busy(conn, max)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-slots }()
			s.serveConn(ctx, conn, pid)
		}()
	}
}

// busy tells a client over the connection bound why it is turned away.
func busy(conn net.Conn, max int) {
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	b, _ := json.Marshal(message{Error: &api.Error{Code: api.CodeBusy, Message: fmt.Sprintf(
		"daemon busy: %d connections already open; try again when some calls have finished", max)}})
	conn.Write(append(b, '\n'))
	conn.Close()
}

// drain waits up to Grace for the calls in flight, then ends the rest.
func (s *Server) drain() {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(cmp.Or(s.Grace, DefaultGrace)):
	}
	s.mu.Lock()
	left := make([]*Call, 0, len(s.calls))
	for c := range s.calls {
		left = append(left, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range left {
		s.Log.Warn("call still running at shutdown: ended", "method", c.Method, "client_pid", c.peerPID, "running", time.Since(c.start).Round(time.Millisecond))
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.finish(message{Error: &api.Error{Code: api.CodeInternal, Message: "daemon stopped before " + c.Method + " finished"}}, time.Second)
			c.conn.Close()
		}()
	}
	wg.Wait()
}

// peer checks the peer credentials: only the daemon's own user (or root)
// may talk to it. pid is the client's process.
func peer(conn net.Conn) (ok bool, pid int) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false, 0
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false, 0
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cred == nil || (int(cred.Uid) != os.Getuid() && cred.Uid != 0) {
		return false, 0
	}
	return true, int(cred.Pid)
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn, pid int) {
	upgraded := false
	defer func() {
		if !upgraded {
			conn.Close()
		}
	}()
	br := bufio.NewReaderSize(conn, 64<<10)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := br.ReadSlice('\n')
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		return
	}
	var req struct {
		V      int             `json:"v"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	c := newCall(conn, br, pid)
	s.track(c, true)
	defer s.track(c, false)
	if err := json.Unmarshal(line, &req); err != nil {
		c.finish(message{Error: &api.Error{Code: api.CodeInvalid, Message: "bad request: " + err.Error()}}, resultTimeout)
		return
	}
	c.Method, c.params = req.Method, req.Params
	if req.V != api.Version {
		c.finish(message{Error: &api.Error{Code: api.CodeVersion, Message: fmt.Sprintf(
			"protocol version %d not supported by this daemon (speaks %d): restart it with `banger daemon stop`", req.V, api.Version)}}, resultTimeout)
		return
	}
	h, ok := s.Handlers[req.Method]
	if !ok {
		c.finish(message{Error: &api.Error{Code: api.CodeInvalid, Message: "unknown method " + req.Method}}, resultTimeout)
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A call is cancelled when its client disconnects (see watch).
	c.watch = &watch{conn: conn, br: br, cancel: cancel}
	c.watch.start()
	defer c.watch.stop()
	start := time.Now()
	res, err := h(cctx, c)
	if errors.Is(err, ErrUpgraded) {
		upgraded = true
		s.Log.Debug("call", "method", req.Method, "dur", time.Since(start), "upgraded", true)
		return
	}
	s.Log.Info("call", "method", req.Method, "dur", time.Since(start).Round(time.Millisecond), "err", err)
	m := message{Error: toAPIError(err)}
	if err == nil {
		b, merr := json.Marshal(res)
		m = message{Result: b}
		if merr != nil {
			m = message{Error: &api.Error{Code: api.CodeInternal, Message: merr.Error()}}
		}
	}
	if _, werr := c.finish(m, resultTimeout); werr != nil {
		s.Log.Warn("result not delivered: the client did not read it", "method", req.Method, "client_pid", pid, "err", werr)
	}
}

func (s *Server) track(c *Call, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[*Call]struct{}{}
	}
	if on {
		s.calls[c] = struct{}{}
	} else {
		delete(s.calls, c)
	}
}

func toAPIError(err error) *api.Error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	return &api.Error{Code: api.CodeInternal, Message: err.Error()}
}
