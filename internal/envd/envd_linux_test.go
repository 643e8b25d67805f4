package envd

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/banger-dev/banger/internal/agent"
	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/proto/filesystem/filesystempbconnect"
	"github.com/banger-dev/banger/proto/process/processpbconnect"
)

// The guest in these tests is a real agent (internal/agent's Server) run
// on the host over a pipe, as the daemon's fake VMM does: every RPC goes
// through the same agent ops as in a VM. They run as root (make test
// does), so the agent may chown and start processes as it does in a guest.

// fakeSandboxes knows one running sandbox, "sb", and a stopped one.
type fakeSandboxes struct{ g Guest }

func (f fakeSandboxes) Sandbox(ctx context.Context, id string) (Guest, error) {
	switch id {
	case "sb":
		return f.g, nil
	case "stopped":
		return Guest{}, ErrNotRunning
	}
	return Guest{}, ErrNotFound
}

type testEnv struct {
	srv  *Server
	url  string
	proc processpbconnect.ProcessClient
	fs   filesystempbconnect.FilesystemClient
	http *http.Client // sends E2b-Sandbox-Id: sb
}

func newTestEnv(t *testing.T, opts ...connect.ClientOption) *testEnv {
	t.Helper()
	host, guest := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		(&agent.Server{}).ServeConn(ctx, guest)
		close(served)
	}()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	c, err := client.Connect(cctx, host)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Deps{Sandboxes: fakeSandboxes{Guest{ID: "vm-1", Agent: c, Env: []string{"IMAGE_VAR=from-image"}}}, MaxUpload: 1 << 20})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
		c.Close()
		cancel()
		<-served
	})
	hc := &http.Client{Transport: sandboxHeader{"sb", http.DefaultTransport}}
	return &testEnv{
		srv: srv, url: ts.URL, http: hc,
		proc: processpbconnect.NewProcessClient(hc, ts.URL, opts...),
		fs:   filesystempbconnect.NewFilesystemClient(hc, ts.URL, opts...),
	}
}

// sandboxHeader adds E2b-Sandbox-Id, as the SDK does on every request.
type sandboxHeader struct {
	id   string
	next http.RoundTripper
}

func (s sandboxHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("E2b-Sandbox-Id", s.id)
	return s.next.RoundTrip(r)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func codeOf(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return 0
}

// codecs runs a test with the JSON codec (what the SDK uses) and binary
// protobuf.
func codecs(t *testing.T, f func(t *testing.T, e *testEnv)) {
	t.Run("json", func(t *testing.T) { f(t, newTestEnv(t, connect.WithProtoJSON())) })
	t.Run("proto", func(t *testing.T) { f(t, newTestEnv(t)) })
}
