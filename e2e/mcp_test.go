package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpSession is the MCP SDK's own client (not banger code) driving
// `banger mcp` as an agent host would: a subprocess on stdio.
type mcpSession struct {
	t  *testing.T
	cs *mcp.ClientSession

	mu       sync.Mutex
	progress []string
}

// call calls a tool and decodes its structured result into out; a tool
// error is returned as its text.
func (s *mcpSession) call(tool string, args map[string]any, out any) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := &mcp.CallToolParams{Name: tool, Arguments: args}
	p.SetProgressToken(tool)
	start := time.Now()
	res, err := s.cs.CallTool(ctx, p)
	if err != nil {
		s.t.Fatalf("%s: %v", tool, err)
	}
	s.t.Logf("mcp %s → error %v in %s", tool, res.IsError, time.Since(start).Round(time.Millisecond))
	if res.IsError {
		return res.Content[0].(*mcp.TextContent).Text
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, out); err != nil {
		s.t.Fatalf("%s: %v\n%s", tool, err, b)
	}
	return ""
}

func (s *mcpSession) must(tool string, args map[string]any, out any) {
	s.t.Helper()
	if msg := s.call(tool, args, out); msg != "" {
		s.t.Fatalf("%s %v: tool error: %s", tool, args, msg)
	}
}

// TestMCP drives `banger mcp` with the Go MCP SDK's client over stdio:
// tools listed, a sandbox created with a repository imported (one real
// guest), commands run, files written, read and listed, the workspace's
// changes exported as a patch that applies on the host, the sandbox
// deleted.
func TestMCP(t *testing.T) {
	e := newEnv(t)
	repo := wsRepo(t)
	work := t.TempDir()
	var stderr bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", e.ns, filepath.Join(e.bin, "banger"), "mcp")
	cmd.Env, cmd.Dir, cmd.Stderr = e.vars, work, &stderr
	s := &mcpSession{t: t}
	client := mcp.NewClient(&mcp.Implementation{Name: "banger-e2e", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			s.mu.Lock()
			s.progress = append(s.progress, r.Params.Message)
			s.mu.Unlock()
		}})
	var err error
	if s.cs, err = client.Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil); err != nil {
		t.Fatalf("connect to banger mcp: %v\n%s", err, stderr.String())
	}
	defer func() {
		s.cs.Close()
		if stderr.Len() > 0 {
			t.Logf("banger mcp stderr:\n%s", stderr.String())
		}
	}()

	tools, err := s.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"create_sandbox", "list_sandboxes", "delete_sandbox", "run_command", "read_file", "write_file", "list_directory", "export_workspace"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %s: %v", want, names)
		}
	}

	var created struct {
		Sandbox   struct{ Name, State string }
		Workspace struct {
			GuestPath string `json:"guest_path"`
			Files     int
			Branch    string
		}
	}
	s.must("create_sandbox", map[string]any{"name": "agent", "repo": repo, "memory": "1G"}, &created)
	if created.Sandbox.State != "running" || created.Workspace.GuestPath != "/root/repo" || created.Workspace.Files != 5 || created.Workspace.Branch != "main" {
		t.Errorf("created %+v", created)
	}
	s.mu.Lock()
	t.Logf("progress notifications: %q", s.progress)
	if len(s.progress) == 0 {
		t.Error("create_sandbox sent no progress notifications")
	}
	s.mu.Unlock()
	if vms := e.vmList(); len(vms) != 1 || vms[0]["name"] != "agent" {
		t.Errorf("vm ls does not show the sandbox: %v", vms)
	}

	type runOut struct {
		ExitCode int `json:"exit_code"`
		Stdout   string
		Stderr   string
	}
	var r runOut
	s.must("run_command", map[string]any{"sandbox": "agent", "argv": []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, &r)
	if r.ExitCode != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("argv: %+v", r)
	}
	s.must("run_command", map[string]any{"sandbox": "agent", "command": "pwd; echo $GREETING; git log --format=%s | head -1",
		"cwd": "/root/repo", "env": map[string]string{"GREETING": "hi"}}, &r)
	if r.ExitCode != 0 || r.Stdout != "/root/repo\nhi\nsecond\n" {
		t.Errorf("shell line: %+v", r)
	}

	// A command past its timeout is killed in the guest; long output
	// keeps its start and end.
	var big struct {
		ExitCode        int  `json:"exit_code"`
		TimedOut        bool `json:"timed_out"`
		Stdout          string
		StdoutTruncated bool  `json:"stdout_truncated"`
		StdoutBytes     int64 `json:"stdout_bytes"`
	}
	s.must("run_command", map[string]any{"sandbox": "agent", "command": "echo started; exec sleep 600", "timeout_seconds": 2}, &big)
	if !big.TimedOut || big.ExitCode != 137 || big.Stdout != "started\n" {
		t.Errorf("timeout: %+v", big)
	}
	s.must("run_command", map[string]any{"sandbox": "agent", "command": "echo first; seq 1 100000; echo last", "max_output_bytes": 2000}, &big)
	if !big.StdoutTruncated || big.StdoutBytes != 588906 || !strings.HasPrefix(big.Stdout, "first\n1\n") || !strings.HasSuffix(big.Stdout, "100000\nlast\n") || !strings.Contains(big.Stdout, "bytes cut") {
		t.Errorf("bounded output: %d bytes, truncated %v, %q", big.StdoutBytes, big.StdoutTruncated, big.Stdout)
	}

	var w struct{ Path string }
	s.must("write_file", map[string]any{"sandbox": "agent", "path": "/root/repo/added.txt", "content": "from mcp\n"}, &w)
	s.must("write_file", map[string]any{"sandbox": "agent", "path": "repo/deep/er/x.sh", "content": "#!/bin/sh\necho x\n", "mode": "0755", "create_parents": true}, &w)
	if w.Path != "/root/repo/deep/er/x.sh" {
		t.Errorf("write_file path %q", w.Path)
	}
	if msg := s.call("write_file", map[string]any{"sandbox": "agent", "path": "/root/nowhere/f", "content": "x"}, &w); !strings.Contains(msg, "/root/nowhere") {
		t.Errorf("write_file into a missing directory: %q, want the agent's refusal naming it", msg)
	}
	var rd struct{ Content, Encoding, Mode string }
	s.must("read_file", map[string]any{"sandbox": "agent", "path": "/root/repo/added.txt"}, &rd)
	if rd.Content != "from mcp\n" || rd.Encoding != "utf-8" {
		t.Errorf("read back %+v", rd)
	}
	s.must("read_file", map[string]any{"sandbox": "agent", "path": "repo/deep/er/x.sh"}, &rd)
	if rd.Content != "#!/bin/sh\necho x\n" || rd.Mode != "0755" {
		t.Errorf("read back %+v", rd)
	}
	s.must("run_command", map[string]any{"sandbox": "agent", "argv": []string{"/root/repo/deep/er/x.sh"}}, &r)
	if r.Stdout != "x\n" {
		t.Errorf("the written script ran as %+v", r)
	}

	var ls struct {
		Entries []struct{ Name, Type string }
	}
	s.must("list_directory", map[string]any{"sandbox": "agent", "path": "/root/repo"}, &ls)
	var got []string
	for _, e := range ls.Entries {
		got = append(got, e.Name+":"+e.Type)
	}
	want := []string{".git:directory", ".gitignore:file", "README.md:file", "added.txt:file", "deep:directory", "old.txt:file", "space name.txt:file", "src:directory"}
	if !slices.Equal(got, want) {
		t.Errorf("list_directory %q, want %q", got, want)
	}

	s.must("run_command", map[string]any{"sandbox": "agent", "command": "git rm -q old.txt && git -c user.name=a -c user.email=a@b commit -qm 'agent commit'", "cwd": "/root/repo"}, &r)
	if r.ExitCode != 0 {
		t.Fatalf("guest commit: %+v", r)
	}
	var ex struct {
		Patch     string
		Bytes     int64
		WrittenTo string `json:"written_to"`
	}
	s.must("export_workspace", map[string]any{"sandbox": "agent"}, &ex)
	for _, want := range []string{"added.txt", "deep/er/x.sh", "old.txt"} {
		if !strings.Contains(ex.Patch, want) {
			t.Errorf("patch lacks %s:\n%s", want, ex.Patch)
		}
	}
	s.must("export_workspace", map[string]any{"sandbox": "agent", "output_path": "fix.patch"}, &ex)
	if ex.WrittenTo != filepath.Join(work, "fix.patch") {
		t.Errorf("written to %q", ex.WrittenTo)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	run(t, "git", "clone", "-q", repo, clone)
	run(t, "git", "-C", clone, "apply", filepath.Join(work, "fix.patch"))
	if b, _ := os.ReadFile(filepath.Join(clone, "added.txt")); string(b) != "from mcp\n" {
		t.Errorf("after git apply, added.txt is %q", b)
	}
	if _, err := os.Stat(filepath.Join(clone, "old.txt")); !os.IsNotExist(err) {
		t.Errorf("after git apply, old.txt: %v", err)
	}

	var del struct{ State string }
	s.must("delete_sandbox", map[string]any{"name": "agent"}, &del)
	if msg := s.call("run_command", map[string]any{"sandbox": "agent", "argv": []string{"true"}}, &r); !strings.Contains(msg, "agent") {
		t.Errorf("run_command in a deleted sandbox: %q", msg)
	}
	var list struct{ Sandboxes []any }
	s.must("list_sandboxes", nil, &list)
	if len(list.Sandboxes) != 0 {
		t.Errorf("sandboxes left: %v", list.Sandboxes)
	}
	e.assertClean()
}
