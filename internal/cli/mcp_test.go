package cli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/mcpserver"
)

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
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	opts := &mcpOptions{IO: &iostreams{In: inR, Out: outW, Err: io.Discard}, Daemon: mcpserver.Client(&client.Client{
		DialForTest: func(context.Context) (net.Conn, error) { return nil, errors.New("no daemon here") }})}
	done := make(chan error, 1)
	go func() { done <- mcpRun(context.Background(), opts); outW.Close() }()
	go io.WriteString(inW, strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, ""}, "\n"))
	sc := bufio.NewScanner(outR)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), `{"jsonrpc":"2.0","id":2,`) {
			break
		}
	}
	inW.Close()
	go io.Copy(io.Discard, outR)
	if err := <-done; err != nil {
		t.Fatalf("mcp: %v", err)
	}
	if len(lines) != 2 {
		t.Fatalf("stdout: %q, want the two answers", lines)
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, `{"jsonrpc":"2.0"`) {
			t.Errorf("stdout carries something other than the protocol: %q", line)
		}
	}
	if !strings.Contains(lines[1], `"name":"run_command"`) {
		t.Errorf("tools/list: %q", lines[1])
	}
}

// The help teaches the configuration: Claude Code's line and the JSON
// other hosts take.
func TestMCPHelpTeachesTheConfiguration(t *testing.T) {
	var out strings.Builder
	f := newFactory(&Env{In: strings.NewReader(""), Out: &out, Err: io.Discard, Client: &client.Client{}})
	root := newRootCmd(f)
	root.SetArgs([]string{"mcp", "--help"})
	root.SetOut(&out)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"claude mcp add banger -- banger mcp", `{"mcpServers": {"banger": {"command": "banger", "args": ["mcp"]}}}`, "run_command", "export_workspace"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banger mcp --help lacks %q:\n%s", want, out.String())
		}
	}
}
