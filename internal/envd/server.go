// Package envd serves E2B's in-sandbox API (envd: the process and
// filesystem Connect-RPC services, /files, /health, /envs) for banger's
// VMs, translated to banger's own guest agent protocol: nothing of it
// runs in the guest but the agent. The HTTP API's server hands it every
// request carrying E2b-Sandbox-Id; the sandbox is a VM the daemon finds
// through Sandboxes.
package envd

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"connectrpc.com/connect"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/proto/filesystem/filesystempbconnect"
	"github.com/banger-dev/banger/proto/process/processpbconnect"
)

// Port is the port E2B's SDK names in E2b-Sandbox-Port for envd.
const Port = "49983"

// Agent is what envd needs of a guest's agent (*client.Client is one).
type Agent interface {
	Do(ctx context.Context, op string, params, out any) error
	Open(ctx context.Context, op string, params any) (net.Conn, json.RawMessage, error)
	OpenExec(ctx context.Context, req proto.ExecRequest) (net.Conn, error)
	CopyIn(ctx context.Context, p proto.CopyInParams, fill func(*client.TarWriter) error) (proto.CopyResult, error)
}

// Guest is a running sandbox.
type Guest struct {
	ID    string // the VM's id: processes and watchers are kept per ID
	Agent Agent
	User  string   // the image's user ("" is root): the default user
	Env   []string // the image's environment, KEY=VALUE
}

// Sandboxes finds sandboxes.
type Sandboxes interface {
	// Sandbox returns the running sandbox id names (a VM name or id):
	// ErrNotFound when there is none, ErrNotRunning when it is not
	// running (stopped, paused, saved).
	Sandbox(ctx context.Context, id string) (Guest, error)
}

// Errors of Sandboxes.Sandbox.
var (
	ErrNotFound   = errors.New("sandbox not found")
	ErrNotRunning = errors.New("sandbox is not running")
)

// Deps are the server's dependencies.
type Deps struct {
	Sandboxes Sandboxes
	Log       *slog.Logger
	// MaxUpload bounds one POST /files body (default 1 GiB).
	MaxUpload int64
}

// DefaultMaxUpload is Deps.MaxUpload's default.
const DefaultMaxUpload = 1 << 30

// Server is the envd handler.
type Server struct {
	d   Deps
	mux *http.ServeMux

	mu       sync.Mutex
	procs    map[string]*procTable // by Guest.ID
	watchers map[string]*watcher   // by watcher id
	closed   bool
}

// New returns the envd handler.
func New(d Deps) *Server {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.MaxUpload <= 0 {
		d.MaxUpload = DefaultMaxUpload
	}
	s := &Server{d: d, mux: http.NewServeMux(), procs: map[string]*procTable{}, watchers: map[string]*watcher{}}
	s.mux.Handle(processpbconnect.NewProcessHandler(processService{s}))
	s.mux.Handle(filesystempbconnect.NewFilesystemHandler(filesystemService{s}))
	s.mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s.mux.HandleFunc("GET /envs", s.envs)
	s.mux.HandleFunc("GET /files", s.download)
	s.mux.HandleFunc("POST /files", s.upload)
	return s
}

type guestKey struct{}

// ServeHTTP finds the sandbox the request names and serves it. A
// sandbox that does not exist or does not run gets what E2B's proxy
// answers then: 502 with {"sandboxId", "message", "code"}, which the SDK
// reports as a missing (timed-out) sandbox.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("E2b-Sandbox-Id")
	if id == "" {
		writeError(w, http.StatusBadRequest, "missing E2b-Sandbox-Id header: every envd request names its sandbox")
		return
	}
	if port := r.Header.Get("E2b-Sandbox-Port"); port != "" && port != Port {
		writeJSON(w, http.StatusBadGateway, proxyError{SandboxID: id, Code: http.StatusBadGateway,
			Message: "port " + port + " of sandbox " + id + " is not served: banger serves only envd (" + Port + ") here"})
		return
	}
	g, err := s.d.Sandboxes.Sandbox(r.Context(), id)
	if err != nil {
		msg := "The sandbox " + id + " was not found"
		switch {
		case errors.Is(err, ErrNotRunning):
			// The detail (its state) follows ErrNotRunning's text.
			msg = "The sandbox " + id + " is not running" + strings.TrimPrefix(err.Error(), ErrNotRunning.Error())
		case !errors.Is(err, ErrNotFound):
			writeError(w, http.StatusInternalServerError, "looking up sandbox "+id+": "+err.Error())
			return
		}
		writeJSON(w, http.StatusBadGateway, proxyError{SandboxID: id, Code: http.StatusBadGateway, Message: msg})
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), guestKey{}, g)))
}

func guestOf(ctx context.Context) Guest {
	g, _ := ctx.Value(guestKey{}).(Guest)
	return g
}

// Close ends every process stream and watcher the server holds (the
// guest processes are killed: their exec streams close).
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	tables, watchers := s.procs, s.watchers
	s.procs, s.watchers = map[string]*procTable{}, map[string]*watcher{}
	s.mu.Unlock()
	for _, t := range tables {
		t.closeAll()
	}
	for _, w := range watchers {
		w.close()
	}
}

// proxyError is the body E2B's proxy sends for a sandbox it cannot reach.
type proxyError struct {
	SandboxID string `json:"sandboxId"`
	Message   string `json:"message"`
	Code      int    `json:"code"`
}

// apiError is envd's error body (envd.yaml's Error).
type apiError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Message: msg, Code: status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// connectErr turns an agent failure into a Connect error: an fs error by
// its code, anything else as unavailable (the guest's agent went away)
// or internal.
func connectErr(err error) error {
	var fe *fsErr
	var re *client.RequestError
	switch {
	case errors.As(err, &fe):
		return connect.NewError(fe.connectCode(), errors.New(fe.Message))
	case errors.As(err, &re):
		return connect.NewError(connect.CodeInvalidArgument, errors.New(re.Message))
	case errors.Is(err, client.ErrClosed):
		return connect.NewError(connect.CodeUnavailable, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	return connect.NewError(connect.CodeInternal, err)
}
