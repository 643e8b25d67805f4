package rpc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/rpc"
)

func TestHandlerCancelledWhenClientDisconnects(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan error, 1)
	dial := serve(t, map[string]rpc.Handler{"block": func(ctx context.Context, c *rpc.Call) (any, error) {
		close(started)
		select {
		case <-ctx.Done():
			cancelled <- ctx.Err()
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("handler context never cancelled")
		}
		return nil, ctx.Err()
	}})
	c, err := rpc.Start(context.Background(), dial, "block", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	c.Close()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler saw %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler still running 5s after the client left")
	}
}

func TestClientContextCancelStopsWait(t *testing.T) {
	release := make(chan struct{})
	dial := serve(t, map[string]rpc.Handler{"block": func(ctx context.Context, c *rpc.Call) (any, error) {
		select {
		case <-ctx.Done():
		case <-release:
		}
		return nil, nil
	}})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "block", nil)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err = c.Wait(ctx, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("Wait took %v after the deadline", d)
	}
}

func TestServeWaitsForHandlers(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "w.sock")
	l, err := rpc.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	srv := &rpc.Server{Log: slog.New(slog.DiscardHandler), Handlers: map[string]rpc.Handler{
		"hold": func(ctx context.Context, c *rpc.Call) (any, error) {
			close(started)
			<-release
			return nil, nil
		}}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	dial := func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "unix", sock) }
	c, err := rpc.Start(context.Background(), dial, "hold", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-started
	l.Close()
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while a handler was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the handler finished")
	}
}

// A handler that has read its request body and then works on (vm run
// REPO booting after the archive arrived) is still cancelled when the
// client goes away: the watch runs again once the body has ended.
func TestHandlerCancelledWhenClientDisconnectsAfterBody(t *testing.T) {
	read := make(chan int, 1)
	cancelled := make(chan error, 1)
	dial := serve(t, map[string]rpc.Handler{"upload": func(ctx context.Context, c *rpc.Call) (any, error) {
		n, err := io.Copy(io.Discard, c.Body())
		if err != nil {
			return nil, err
		}
		read <- int(n)
		select {
		case <-ctx.Done():
			cancelled <- ctx.Err()
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("handler context never cancelled")
		}
		return nil, ctx.Err()
	}})
	c, err := rpc.Start(context.Background(), dial, "upload", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SendBody(strings.NewReader("archive bytes"))
	select {
	case n := <-read:
		if n != len("archive bytes") {
			t.Fatalf("handler read %d bytes", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler never finished reading the body")
	}
	c.Close()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler saw %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler still running 5s after the client left")
	}
}
