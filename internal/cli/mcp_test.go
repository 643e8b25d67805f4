package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/mcpserver"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMCPTakesNoArguments(t *testing.T) {
	got, err := parseOnly(t, newMCPCmd)
	if err != nil || got == nil || got.Daemon == nil {
		t.Fatalf("err %v, opts %v", err, got)
	}
	got, err = parseOnly(t, newMCPCmd, "extra")
	wantUsage(t, []string{"extra"}, got, err)
}

// banger mcp answers MCP on stdin/stdout, writes nothing else to stdout,
// and returns when the client closes stdin; listing tools needs no
// daemon.
func TestMCPServesOnStdio(t *testing.T) {
	in := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, ""}, "\n")
	pr, pw := io.Pipe()
	out := &lockedBuffer{}
	opts := &mcpOptions{IO: &iostreams{In: pr, Out: out, Err: io.Discard}, Daemon: mcpserver.Client(&client.Client{
		DialForTest: func(context.Context) (net.Conn, error) { return nil, errors.New("no daemon here") }})}
	done := make(chan error, 1)
	go func() { done <- mcpRun(context.Background(), opts) }()
	io.WriteString(pw, in)
	// Wait for both answers before closing stdin.
	for !strings.Contains(out.String(), `"id":2`) {
		select {
		case err := <-done:
			t.Fatalf("mcp returned early: %v; stdout %q", err, out.String())
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("mcp: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, `{"jsonrpc":"2.0"`) {
			t.Errorf("stdout carries something other than the protocol: %q", line)
		}
	}
	if !strings.Contains(out.String(), `"name":"run_command"`) {
		t.Errorf("tools/list: %q", out.String())
	}
}
