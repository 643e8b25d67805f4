// Package httpapi is the daemon's HTTP transport for programs: E2B's
// control plane (sandboxes = banger VMs, templates = banger images),
// the in-sandbox envd API (a handler of its own, reached by requests
// carrying E2b-Sandbox-Id) and banger's own routes (images, snapshots),
// described by GET /openapi.json. Like internal/rpcapi it is an adapter:
// it decodes, authenticates, calls one typed service method and encodes;
// the services never see an HTTP type. The listener is [api] listen in
// config.toml (off unless set; TLS required off loopback).
//
// Every request needs a key (X-API-KEY; apikeys.Service, constant-time),
// or, for envd requests, the sandbox's access token (X-Access-Token, as
// E2B's SDK sends it). The daemon serves one user: every key acts as
// that user.
package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/config"
)

// Size limits of request bodies: JSON control-plane requests are small;
// an upload route sets its own.
const (
	MaxJSONBody = 1 << 20
)

// DefaultEnvdVersion is the envd version sandboxes report until an envd
// handler says otherwise (Deps.EnvdVersion): the SDK gates features on
// it (0.5.2: closeStdin).
const DefaultEnvdVersion = "0.5.2"

// KeyChecker checks API keys (*apikeys.Service).
type KeyChecker interface {
	Check(ctx context.Context, key string) (name string, ok bool, err error)
}

// Deps are the server's dependencies.
type Deps struct {
	VMs       VMs
	Images    Images
	Snapshots Snapshots
	// Workspaces and Execs serve workspace import and export; nil: 501.
	Workspaces Workspaces
	Execs      Execs
	Keys       KeyChecker
	Records    Records
	// Envd serves requests that carry E2b-Sandbox-Id (the in-sandbox
	// API); nil answers them 501.
	Envd http.Handler
	// Fork and Network are issue 14's fork and issue 16's network policy;
	// nil answers their routes 501.
	Fork    Forker
	Network NetworkPolicy
	// DefaultImage is the image E2B's template "base" means.
	DefaultImage string
	EnvdVersion  string
	Log          *slog.Logger
	Now          func() time.Time
}

// Server is the HTTP API.
type Server struct {
	d   Deps
	mux *http.ServeMux
}

// New builds the server.
func New(d Deps) *Server {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.EnvdVersion == "" {
		d.EnvdVersion = DefaultEnvdVersion
	}
	s := &Server{d: d, mux: http.NewServeMux()}
	s.routes()
	return s
}

// ServeHTTP authenticates the request, limits its body and routes it:
// to the envd handler when it names a sandbox, else to the control
// plane and banger's own routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sandbox := r.Header.Get("E2b-Sandbox-Id")
	if !s.authorized(w, r, sandbox) {
		return
	}
	if sandbox != "" {
		if s.d.Envd == nil {
			writeError(w, http.StatusNotImplemented, "the in-sandbox API (envd) is not part of this banger build yet")
			return
		}
		s.d.Envd.ServeHTTP(w, r)
		return
	}
	limit := int64(MaxJSONBody)
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/banger/sandboxes/") && strings.HasSuffix(r.URL.Path, "/workspace") {
		limit = MaxUploadBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	s.mux.ServeHTTP(w, r)
}

// authorized answers 401 unless the request carries a valid API key, or
// (envd requests) the named sandbox's access token.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, sandbox string) bool {
	if key := r.Header.Get("X-API-Key"); key != "" {
		_, ok, err := s.d.Keys.Check(r.Context(), key)
		if err != nil {
			s.d.Log.Error("api key check", "err", err)
			writeError(w, http.StatusInternalServerError, "checking the API key failed: "+err.Error())
			return false
		}
		if ok {
			return true
		}
		writeError(w, http.StatusUnauthorized, "Invalid API key: create one with `banger api key create` and send it as X-API-KEY")
		return false
	}
	if tok := r.Header.Get("X-Access-Token"); tok != "" && sandbox != "" {
		if want, err := s.accessToken(r.Context(), sandbox); err == nil && want != "" &&
			subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1 {
			return true
		}
		writeError(w, http.StatusUnauthorized, "Invalid access token for sandbox "+sandbox)
		return false
	}
	writeError(w, http.StatusUnauthorized, "Missing API key: create one with `banger api key create` and send it as X-API-KEY")
	return false
}

// Listener serves one Server on cfg's address until Close.
type Listener struct {
	srv *http.Server
	l   net.Listener
}

// Listen opens cfg.Listen (with TLS when configured). The address is
// checked by config.Validate.
func Listen(cfg config.API, h http.Handler, log *slog.Logger) (*Listener, error) {
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &Listener{srv: srv, l: l}, nil
}

// Addr is the address listened on.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// Serve serves until Close; cert and key are set for TLS.
func (l *Listener) Serve(cert, key string) error {
	var err error
	if cert != "" {
		err = l.srv.ServeTLS(l.l, cert, key)
	} else {
		err = l.srv.Serve(l.l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting, gives requests in flight bound to finish, then
// closes what is left.
func (l *Listener) Close(bound time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if l.srv.Shutdown(ctx) != nil {
		l.srv.Close()
	}
}
