package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts of catalog and bundle downloads. There is deliberately no total
// timeout: a bundle is gigabytes and a slow link is not a broken one.
// What is bounded is every wait for the other side: connecting, the TLS
// handshake, the response headers, and any gap between two reads of the
// body (readIdleTimeout), so a server that stops sending ends the
// download instead of hanging it (the .partial file is kept for a resume).
var (
	dialTimeout           = 30 * time.Second
	tlsHandshakeTimeout   = 30 * time.Second
	responseHeaderTimeout = 60 * time.Second
	readIdleTimeout       = 60 * time.Second
)

// ErrStalled is wrapped when a server sent nothing for readIdleTimeout.
var ErrStalled = errors.New("download stalled")

var (
	defaultClientOnce sync.Once
	defaultClient     *http.Client
)

// DefaultHTTPClient is the client used when a Download names none:
// http.DefaultTransport's proxy and connection settings with bounded
// connect, TLS and response-header waits.
func DefaultHTTPClient() *http.Client {
	defaultClientOnce.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = tlsHandshakeTimeout
		tr.ResponseHeaderTimeout = responseHeaderTimeout
		tr.ExpectContinueTimeout = time.Second
		defaultClient = &http.Client{Transport: tr}
	})
	return defaultClient
}

// idleBody ends a response whose body stays silent for idle: each Read
// re-arms a timer that cancels the request's context.
type idleBody struct {
	body    io.ReadCloser
	idle    time.Duration
	t       *time.Timer
	cancel  context.CancelFunc
	mu      sync.Mutex
	stalled bool
}

func newIdleBody(body io.ReadCloser, idle time.Duration, cancel context.CancelFunc) *idleBody {
	b := &idleBody{body: body, idle: idle, cancel: cancel}
	b.t = time.AfterFunc(idle, func() {
		b.mu.Lock()
		b.stalled = true
		b.mu.Unlock()
		cancel()
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.t.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		b.mu.Lock()
		stalled := b.stalled
		b.mu.Unlock()
		if stalled {
			return n, fmt.Errorf("%w: no data for %s", ErrStalled, b.idle)
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.t.Stop()
	b.cancel()
	return b.body.Close()
}

// idleTransport gives every response body sent through base the same
// readIdleTimeout as a Download: go-containerregistry reads registry
// blobs through it, and a registry that stops sending mid-layer would
// otherwise hang the pull.
type idleTransport struct{ base http.RoundTripper }

func (t idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context()) // ended by idleBody on a stall
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = newIdleBody(resp.Body, readIdleTimeout, cancel)
	return resp, nil
}
