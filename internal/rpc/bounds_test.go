package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

// serveWith is serve with a configured server; it returns the dial
// function and a stop function that closes the listener and reports how
// long Serve took to return.
func serveWith(t *testing.T, srv *rpc.Server) (func(context.Context) (net.Conn, error), func() time.Duration) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := rpc.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv.Log = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, l); close(done) }()
	stop := func() time.Duration {
		start := time.Now()
		cancel()
		l.Close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return")
		}
		return time.Since(start)
	}
	t.Cleanup(func() { stop() })
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}, stop
}

// Connections beyond MaxConns get a clear busy error; a freed slot is
// served again.
func TestConnectionBound(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	dial, _ := serveWith(t, &rpc.Server{MaxConns: 4, Handlers: map[string]rpc.Handler{
		"block": func(ctx context.Context, c *rpc.Call) (any, error) {
			entered <- struct{}{}
			<-release
			return "done", nil
		},
		"quick": func(ctx context.Context, c *rpc.Call) (any, error) { return "quick", nil },
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var held []*rpc.Conn
	for range 4 {
		c, err := rpc.Start(ctx, dial, "block", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
		<-entered
	}
	var ae *api.Error
	c, err := rpc.Start(ctx, dial, "quick", nil)
	if err == nil {
		err = c.Wait(ctx, nil, nil)
		c.Close()
	}
	if !errors.As(err, &ae) || ae.Code != api.CodeBusy || !strings.Contains(ae.Message, "4 connections") {
		t.Fatalf("call beyond the bound: %v, want a busy error", err)
	}
	close(release)
	for _, h := range held {
		var s string
		if err := h.Wait(ctx, nil, &s); err != nil || s != "done" {
			t.Errorf("held call: %q %v", s, err)
		}
		h.Close()
	}
	// The slots are given back as the server finishes each connection.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var s string
		c, err = rpc.Start(ctx, dial, "quick", nil)
		if err == nil {
			err = c.Wait(ctx, nil, &s)
			c.Close()
		}
		if err == nil && s == "quick" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the bound freed: %q %v", s, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that stops reading does not slow the handler's progress
// calls (which may run under a VM lock); when it reads again it gets the
// latest progress and the result.
func TestStalledClientDoesNotBlockProgress(t *testing.T) {
	took := make(chan time.Duration, 1)
	const events = 20000
	dial, _ := serveWith(t, &rpc.Server{Handlers: map[string]rpc.Handler{
		"chatty": func(ctx context.Context, c *rpc.Call) (any, error) {
			start := time.Now()
			pad := strings.Repeat("p", 200)
			for i := range events {
				c.Progress("step", fmt.Sprintf("%d %s", i, pad))
			}
			took <- time.Since(start)
			return "finished", nil
		},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "chatty", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not reading: ~4 MB of progress would fill the socket many times over.
	var d time.Duration
	select {
	case d = <-took:
	case <-time.After(10 * time.Second):
		t.Fatal("handler blocked on progress for a client that does not read")
	}
	if d > 3*time.Second {
		t.Errorf("%d progress calls took %s with a stalled client", events, d)
	}
	var got []api.Progress
	var res string
	if err := c.Wait(ctx, func(p api.Progress) { got = append(got, p) }, &res); err != nil || res != "finished" {
		t.Fatalf("result after the stall: %q %v", res, err)
	}
	if len(got) == 0 || len(got) >= events || !strings.HasPrefix(got[len(got)-1].Message, fmt.Sprint(events-1, " ")) {
		t.Errorf("got %d progress lines, the last %q; want a bounded subset ending with the latest", len(got), got[len(got)-1].Message)
	}
	t.Logf("handler: %s for %d progress calls; client got %d of them", d, events, len(got))
}

// Shutdown waits Grace for calls in flight, then ends them with a clear
// error instead of waiting for a handler that does not return.
func TestShutdownEndsCallsAfterGrace(t *testing.T) {
	entered := make(chan struct{})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	dial, stop := serveWith(t, &rpc.Server{Grace: 300 * time.Millisecond, Handlers: map[string]rpc.Handler{
		"stuck": func(ctx context.Context, c *rpc.Call) (any, error) {
			close(entered)
			<-stuck // ignores ctx
			return nil, nil
		},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "stuck", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-entered
	errc := make(chan error, 1)
	go func() { errc <- c.Wait(ctx, nil, nil) }()
	if d := stop(); d > 3*time.Second {
		t.Errorf("Serve returned %s after the listener closed, want about the 300ms grace", d)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "daemon stopped before stuck finished") {
		t.Errorf("client of the stuck call got %v", err)
	}
}

// A client that stops reading cannot hold up the shutdown either.
func TestShutdownWithStalledClientIsBounded(t *testing.T) {
	entered := make(chan struct{})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	dial, stop := serveWith(t, &rpc.Server{Grace: 300 * time.Millisecond, Handlers: map[string]rpc.Handler{
		"stuck": func(ctx context.Context, c *rpc.Call) (any, error) {
			pad := strings.Repeat("p", 1000)
			for i := range 5000 { // ~5 MB: far more than the socket holds
				c.Progress("step", fmt.Sprint(i, pad))
			}
			close(entered)
			<-stuck
			return nil, nil
		},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "stuck", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-entered
	if d := stop(); d > 3*time.Second {
		t.Errorf("Serve returned %s after the listener closed, with a client that does not read", d)
	}
}
