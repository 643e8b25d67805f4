package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

// serve runs an rpc.Server with handlers on a unix socket in t.TempDir()
// and returns a dial function for it. Cleanup closes the listener and
// waits for Serve (and so every handler) to return.
func serve(t *testing.T, handlers map[string]rpc.Handler) func(context.Context) (net.Conn, error) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := rpc.Listen(sock)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	srv := &rpc.Server{Handlers: handlers, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		l.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after the listener closed")
		}
	})
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
}

type echoParams struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type echoResult struct {
	Greeting string `json:"greeting"`
	Count    int    `json:"count"`
}

func echoHandler(ctx context.Context, c *rpc.Call) (any, error) {
	var p echoParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	return echoResult{Greeting: "hello " + p.Name, Count: p.Count * 2}, nil
}

func call(t *testing.T, dial func(context.Context) (net.Conn, error), method string, params, out any, onProgress func(api.Progress)) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, method, params)
	if err != nil {
		t.Fatalf("Start %s: %v", method, err)
	}
	defer c.Close()
	return c.Wait(ctx, onProgress, out)
}

func TestListenSocketModeAndStaleReplace(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	if err := os.WriteFile(sock, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := rpc.Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale file: %v", err)
	}
	defer l.Close()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a 0600 socket", fi.Mode())
	}
}

func TestResultDecoding(t *testing.T) {
	dial := serve(t, map[string]rpc.Handler{"echo": echoHandler})
	var res echoResult
	if err := call(t, dial, "echo", echoParams{Name: "vm1", Count: 21}, &res, nil); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if res != (echoResult{Greeting: "hello vm1", Count: 42}) {
		t.Fatalf("result = %+v", res)
	}
	// No params is fine for a handler that decodes; nil out discards the result.
	if err := call(t, dial, "echo", nil, nil, nil); err != nil {
		t.Fatalf("echo without params: %v", err)
	}
}

func TestBadParamsAreInvalid(t *testing.T) {
	dial := serve(t, map[string]rpc.Handler{"echo": echoHandler})
	err := call(t, dial, "echo", map[string]any{"count": "many"}, nil, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeInvalid || !strings.Contains(ae.Message, "bad params for echo") {
		t.Fatalf("err = %#v, want CodeInvalid about echo's params", err)
	}
}

func TestProgressArrivesInOrderBeforeResult(t *testing.T) {
	stages := []string{"resolve", "disk", "network", "boot", "ssh"}
	dial := serve(t, map[string]rpc.Handler{"slow": func(ctx context.Context, c *rpc.Call) (any, error) {
		for i, s := range stages {
			c.Progress(s, fmt.Sprintf("step %d", i))
			time.Sleep(time.Millisecond)
		}
		return "done", nil
	}})
	var got []api.Progress
	var res string
	err := call(t, dial, "slow", nil, &res, func(p api.Progress) {
		if res != "" {
			t.Errorf("progress %q delivered after the result", p.Stage)
		}
		got = append(got, p)
	})
	if err != nil || res != "done" {
		t.Fatalf("slow = %q, %v", res, err)
	}
	if len(got) != len(stages) {
		t.Fatalf("got %d progress events, want %d: %+v", len(got), len(stages), got)
	}
	for i, p := range got {
		if p.Stage != stages[i] || p.Message != fmt.Sprintf("step %d", i) {
			t.Errorf("event %d = %+v, want stage %s", i, p, stages[i])
		}
		if i > 0 && p.Elapsed < got[i-1].Elapsed {
			t.Errorf("elapsed went backwards: %v after %v", p.Elapsed, got[i-1].Elapsed)
		}
	}
}

func TestErrorsPassThrough(t *testing.T) {
	dial := serve(t, map[string]rpc.Handler{
		"api": func(ctx context.Context, c *rpc.Call) (any, error) {
			return nil, fmt.Errorf("lookup: %w", &api.Error{Code: api.CodeNotFound, Message: `no VM named "x"`})
		},
		"plain": func(ctx context.Context, c *rpc.Call) (any, error) {
			return nil, errors.New("disk on fire")
		},
		"unencodable": func(ctx context.Context, c *rpc.Call) (any, error) {
			return func() {}, nil
		},
	})
	tests := []struct {
		method, code, msg string
	}{
		{"api", api.CodeNotFound, `no VM named "x"`},
		{"plain", api.CodeInternal, "disk on fire"},
		{"unencodable", api.CodeInternal, "unsupported type"},
		{"vm.nope", api.CodeInvalid, "unknown method vm.nope"},
	}
	for _, tt := range tests {
		err := call(t, dial, tt.method, nil, nil, nil)
		var ae *api.Error
		if !errors.As(err, &ae) {
			t.Errorf("%s: err = %v (%T), want *api.Error", tt.method, err, err)
			continue
		}
		if ae.Code != tt.code || !strings.Contains(ae.Message, tt.msg) {
			t.Errorf("%s: got {%s %q}, want {%s %q}", tt.method, ae.Code, ae.Message, tt.code, tt.msg)
		}
	}
}

// rawCall sends line as the request and waits for the reply.
func rawCall(t *testing.T, dial func(context.Context) (net.Conn, error), line string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &rpc.Conn{Conn: nc, R: newReader(nc)}
	defer c.Close()
	if _, err := nc.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	return c.Wait(ctx, nil, nil)
}

func TestBadRequests(t *testing.T) {
	var calls atomic.Int32
	dial := serve(t, map[string]rpc.Handler{"echo": func(ctx context.Context, c *rpc.Call) (any, error) {
		calls.Add(1)
		return nil, nil
	}})
	tests := []struct {
		name, line, code, msg string
	}{
		{"old protocol version", `{"v":0,"method":"echo"}` + "\n", api.CodeVersion, "protocol version 0 not supported"},
		{"newer protocol version", fmt.Sprintf(`{"v":%d,"method":"echo"}`, api.Version+1) + "\n", api.CodeVersion, "banger daemon stop"},
		{"not json", "hello\n", api.CodeInvalid, "bad request"},
	}
	for _, tt := range tests {
		err := rawCall(t, dial, tt.line)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tt.code || !strings.Contains(ae.Message, tt.msg) {
			t.Errorf("%s: err = %#v, want code %s containing %q", tt.name, err, tt.code, tt.msg)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("handler ran %d times for rejected requests", n)
	}
}
