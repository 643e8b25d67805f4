package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"golang.org/x/sys/unix"
)

// Call is one request being served.
type Call struct {
	Method string
	params json.RawMessage
	conn   net.Conn
	br     *bufio.Reader
	start  time.Time
	mu     sync.Mutex
	done   bool
	// stopWatch ends the disconnect watcher before the connection is
	// handed to a streaming handler.
	stopWatch func()
}

// Decode unmarshals the params into v, strictly.
func (c *Call) Decode(v any) error {
	if len(c.params) == 0 || string(c.params) == "null" {
		return nil
	}
	if err := json.Unmarshal(c.params, v); err != nil {
		return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("bad params for %s: %v", c.Method, err)}
	}
	return nil
}

// Progress streams one stage to the client; errors are ignored because
// the client may have gone away and the work must go on.
func (c *Call) Progress(stage, msg string) {
	c.Send(api.Progress{Stage: stage, Message: msg})
}

// Send streams one progress event as given (with counts, for instance);
// Elapsed is filled in.
func (c *Call) Send(p api.Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	p.Elapsed = time.Since(c.start).Seconds()
	c.write(message{Progress: &p})
}

func (c *Call) write(m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = c.conn.Write(append(b, '\n'))
	c.conn.SetWriteDeadline(time.Time{})
	return err
}

// Upgrade sends result and hands the raw connection to the handler for a
// streaming protocol. The returned reader holds any bytes the client sent
// after its request line. The handler must return (nil, ErrUpgraded).
func (c *Call) Upgrade(result any) (net.Conn, *bufio.Reader, error) {
	b, err := json.Marshal(result)
	if err != nil {
		return nil, nil, err
	}
	if c.stopWatch != nil {
		c.stopWatch()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if err := c.write(message{Result: b}); err != nil {
		return nil, nil, err
	}
	return c.conn, c.br, nil
}

// ErrUpgraded tells the server the handler took over the connection.
var ErrUpgraded = errors.New("connection upgraded")

// Handler serves one method.
type Handler func(ctx context.Context, c *Call) (any, error)

// Server serves handlers on a unix socket.
type Server struct {
	Handlers map[string]Handler
	Log      *slog.Logger
	wg       sync.WaitGroup
}

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
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				s.wg.Wait()
				return nil
			}
			return err
		}
		if !sameUser(conn) {
			conn.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

// sameUser checks the peer credentials: only the daemon's own user (or
// root) may talk to it.
func sameUser(conn net.Conn) bool {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	return cred != nil && (int(cred.Uid) == os.Getuid() || cred.Uid == 0)
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
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
	c := &Call{conn: conn, br: br, start: time.Now()}
	if err := json.Unmarshal(line, &req); err != nil {
		c.write(message{Error: &api.Error{Code: api.CodeInvalid, Message: "bad request: " + err.Error()}})
		return
	}
	c.Method, c.params = req.Method, req.Params
	if req.V != api.Version {
		c.write(message{Error: &api.Error{Code: api.CodeVersion, Message: fmt.Sprintf(
			"protocol version %d not supported by this daemon (speaks %d): restart it with `banger daemon stop`", req.V, api.Version)}})
		return
	}
	h, ok := s.Handlers[req.Method]
	if !ok {
		c.write(message{Error: &api.Error{Code: api.CodeInvalid, Message: "unknown method " + req.Method}})
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Disconnect detection for non-streaming calls: the client sends
	// nothing after its request, so a read returning means it went away.
	watch := make(chan struct{})
	var upgrading atomic.Bool
	go func() {
		defer close(watch)
		if _, err := br.Peek(1); err != nil && !upgrading.Load() {
			cancel()
		}
	}()
	c.stopWatch = func() {
		upgrading.Store(true)
		conn.SetReadDeadline(time.Now())
		<-watch
		conn.SetReadDeadline(time.Time{})
	}
	start := time.Now()
	res, err := h(cctx, c)
	if errors.Is(err, ErrUpgraded) {
		upgraded = true
		s.Log.Debug("call", "method", req.Method, "dur", time.Since(start), "upgraded", true)
		return
	}
	s.Log.Info("call", "method", req.Method, "dur", time.Since(start).Round(time.Millisecond), "err", err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if err != nil {
		c.write(message{Error: toAPIError(err)})
		return
	}
	b, err := json.Marshal(res)
	if err != nil {
		c.write(message{Error: &api.Error{Code: api.CodeInternal, Message: err.Error()}})
		return
	}
	c.write(message{Result: b})
}

func toAPIError(err error) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	return &api.Error{Code: api.CodeInternal, Message: err.Error()}
}
