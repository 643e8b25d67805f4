package mcpserver

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
)

// session connects an MCP client to a server over the fake daemon with
// the SDK's in-memory transport; progress notifications are collected.
type session struct {
	*mcp.ClientSession
	dir string

	mu       sync.Mutex
	progress []string
}

func connect(t *testing.T, d Daemon) *session {
	t.Helper()
	ctx := context.Background()
	s := &session{dir: t.TempDir()}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := New(d, Options{Version: "test", Dir: s.dir}).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	c := mcp.NewClient(&mcp.Implementation{Name: "test"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			s.mu.Lock()
			s.progress = append(s.progress, r.Params.Message)
			s.mu.Unlock()
		}})
	if s.ClientSession, err = c.Connect(ctx, ct, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// call calls a tool; a tool error is returned as its text, a result is
// decoded into out.
func (s *session) call(t *testing.T, tool string, args map[string]any, out any) (toolErr string) {
	t.Helper()
	p := &mcp.CallToolParams{Name: tool, Arguments: args}
	p.SetProgressToken("tok")
	res, err := s.CallTool(context.Background(), p)
	if err != nil {
		t.Fatalf("%s: protocol error %v", tool, err)
	}
	if res.IsError {
		if len(res.Content) == 0 {
			t.Fatalf("%s: a tool error without content", tool)
		}
		return res.Content[0].(*mcp.TextContent).Text
	}
	b, _ := json.Marshal(res.StructuredContent)
	reflect.ValueOf(out).Elem().SetZero() // no field left from an earlier call
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: decode %s: %v", tool, b, err)
	}
	return ""
}

// mustCall is call that fails the test on a tool error.
func (s *session) mustCall(t *testing.T, tool string, args map[string]any, out any) {
	t.Helper()
	if msg := s.call(t, tool, args, out); msg != "" {
		t.Fatalf("%s: tool error %q", tool, msg)
	}
}

// wantError checks that a call is a tool error mentioning want.
func (s *session) wantError(t *testing.T, tool string, args map[string]any, want string) {
	t.Helper()
	var out map[string]any
	msg := s.call(t, tool, args, &out)
	if msg == "" {
		t.Fatalf("%s %v: succeeded with %v, want an error about %q", tool, args, out, want)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("%s %v: error %q, want it to mention %q", tool, args, msg, want)
	}
}

func withVM(t *testing.T) (*fakeDaemon, *session) {
	d := newFakeDaemon()
	d.vms["dev"] = api.VM{Name: "dev", State: "running"}
	return d, connect(t, d)
}

func TestToolsAreListedWithSchemasAndDescriptions(t *testing.T) {
	s := connect(t, newFakeDaemon())
	res, err := s.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		if len(tool.Description) < 40 {
			t.Errorf("%s: description %q is too thin for an agent to act on", tool.Name, tool.Description)
		}
		schema, _ := json.Marshal(tool.InputSchema)
		if !strings.Contains(string(schema), `"type":"object"`) {
			t.Errorf("%s: input schema %s", tool.Name, schema)
		}
	}
	slices.Sort(names)
	want := []string{"create_sandbox", "delete_sandbox", "export_workspace", "list_directory", "list_sandboxes", "read_file", "run_command", "write_file"}
	if !slices.Equal(names, want) {
		t.Errorf("tools %v, want %v", names, want)
	}
}

func TestCreateListDelete(t *testing.T) {
	d := newFakeDaemon()
	s := connect(t, d)
	var created CreateOutput
	s.mustCall(t, "create_sandbox", map[string]any{"name": "box", "image": "alpine", "vcpus": 2, "memory": "1.5G"}, &created)
	if got, want := d.created[0], (api.CreateParams{Name: "box", Image: "alpine", VCPU: 2, MemoryMiB: 1536}); got != want {
		t.Errorf("create params %+v, want %+v", got, want)
	}
	if created.Sandbox.Name != "box" || created.Sandbox.State != "running" || created.Workspace != nil {
		t.Errorf("created %+v", created)
	}
	// Notifications travel beside the call's result, not before it: wait.
	var progress []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		progress = slices.Clone(s.progress)
		s.mu.Unlock()
		if slices.Contains(progress, "boot: starting qemu") || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Contains(progress, "boot: starting qemu") {
		t.Errorf("progress notifications %q, want the daemon's boot event", progress)
	}
	var list ListOutput
	s.mustCall(t, "list_sandboxes", nil, &list)
	if len(list.Sandboxes) != 1 || list.Sandboxes[0].Name != "box" {
		t.Errorf("list %+v", list)
	}
	// The daemon's own words come back as the tool error.
	s.wantError(t, "create_sandbox", map[string]any{"name": "box"}, `a VM named "box" already exists`)
	var deleted Sandbox
	s.mustCall(t, "delete_sandbox", map[string]any{"name": "box"}, &deleted)
	if deleted.Name != "box" || deleted.State != "deleted" {
		t.Errorf("deleted %+v", deleted)
	}
	s.wantError(t, "delete_sandbox", map[string]any{"name": "box"}, `no VM named "box"`)
	s.mustCall(t, "list_sandboxes", nil, &list)
	if len(list.Sandboxes) != 0 {
		t.Errorf("after delete: %+v", list)
	}
}

func TestCreateRefusesBadInputBeforeCreating(t *testing.T) {
	d := newFakeDaemon()
	s := connect(t, d)
	s.wantError(t, "create_sandbox", map[string]any{"memory": "lots"}, "memory")
	s.wantError(t, "create_sandbox", map[string]any{"vcpus": -1}, "vcpus")
	s.wantError(t, "create_sandbox", map[string]any{"guest_path": "/root/x"}, "need repo")
	s.wantError(t, "create_sandbox", map[string]any{"repo": filepath.Join(s.dir, "nope")}, "nope")
	s.wantError(t, "create_sandbox", map[string]any{"vcpus": "two"}, "vcpus") // the schema
	s.wantError(t, "delete_sandbox", map[string]any{}, "name")
	if len(d.created) != 0 {
		t.Errorf("bad input reached the daemon: %+v", d.created)
	}
}

// gitRepo makes a repository with one commit under dir.
func gitRepo(t *testing.T, dir string) string {
	t.Helper()
	repo := filepath.Join(dir, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "a.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "a.txt"},
		{"-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "one"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return repo
}

func TestCreateWithARepositoryImportsIt(t *testing.T) {
	d := newFakeDaemon()
	s := connect(t, d)
	gitRepo(t, s.dir)
	var created CreateOutput
	// A relative repo is from the server's directory.
	s.mustCall(t, "create_sandbox", map[string]any{"name": "ws", "repo": "repo", "guest_path": "~/src"}, &created)
	if len(d.imports) != 1 || d.imports[0].Name != "ws" || d.imports[0].GuestPath != "/root/src" || d.imports[0].Files != 1 {
		t.Fatalf("imports %+v", d.imports)
	}
	if w := created.Workspace; w == nil || w.GuestPath != "/root/src" || w.Branch != "main" || len(w.Commit) != 40 {
		t.Errorf("workspace %+v", created.Workspace)
	}
	// An import that fails leaves no sandbox.
	d.prepareErr = &api.Error{Code: api.CodeInvalid, Message: "guest path /root/repo exists"}
	s.wantError(t, "create_sandbox", map[string]any{"name": "ws2", "repo": "repo"}, "guest path /root/repo exists (the sandbox was deleted)")
	if !slices.Contains(d.deleted, "ws2") {
		t.Errorf("the sandbox of a failed import was not deleted: %v", d.deleted)
	}
}

func TestRunCommand(t *testing.T) {
	d, s := withVM(t)
	d.run = func(req api.ExecRequest, stdin string, _ <-chan byte) (string, string, proto.ExitStatus) {
		return "argv=" + strings.Join(req.Argv, "|") + " stdin=" + stdin, "err\n", proto.ExitStatus{Code: 3}
	}
	var out RunOutput
	s.mustCall(t, "run_command", map[string]any{"sandbox": "dev", "argv": []string{"ls", "-l"}, "cwd": "/srv",
		"env": map[string]string{"B": "2", "A": "1"}, "stdin": "in", "user": "app"}, &out)
	if out.ExitCode != 3 || out.Stdout != "argv=ls|-l stdin=in" || out.Stderr != "err\n" || out.StdoutTruncated || out.TimedOut {
		t.Errorf("result %+v", out)
	}
	if req := d.execs[0]; req.Dir != "/srv" || req.User != "app" || !slices.Equal(req.Env, []string{"A=1", "B=2"}) {
		t.Errorf("exec request %+v", req)
	}
	s.mustCall(t, "run_command", map[string]any{"sandbox": "dev", "command": "echo hi | wc -c"}, &out)
	if out.Stdout != "argv=/bin/sh|-c|echo hi | wc -c stdin=" {
		t.Errorf("shell command ran as %q", out.Stdout)
	}
	for args, want := range map[string]map[string]any{
		"not both":         {"sandbox": "dev", "argv": []string{"ls"}, "command": "ls"},
		"no command":       {"sandbox": "dev"},
		"timeout_seconds":  {"sandbox": "dev", "argv": []string{"ls"}, "timeout_seconds": 99999},
		"max_output_bytes": {"sandbox": "dev", "argv": []string{"ls"}, "max_output_bytes": -5},
		"not a variable":   {"sandbox": "dev", "argv": []string{"ls"}, "env": map[string]string{"A=B": "x"}},
		`no VM named "x"`:  {"sandbox": "x", "argv": []string{"ls"}},
	} {
		s.wantError(t, "run_command", want, args)
	}
	d.run = func(api.ExecRequest, string, <-chan byte) (string, string, proto.ExitStatus) {
		return "", "", proto.ExitStatus{Code: 127, Error: `exec "nope": not found`}
	}
	s.wantError(t, "run_command", map[string]any{"sandbox": "dev", "argv": []string{"nope"}}, `could not start: exec "nope": not found`)
}

func TestRunCommandBoundsOutput(t *testing.T) {
	d, s := withVM(t)
	long := strings.Repeat("a", 3000) + strings.Repeat("z", 3000)
	d.run = func(api.ExecRequest, string, <-chan byte) (string, string, proto.ExitStatus) {
		return long, "", proto.ExitStatus{}
	}
	var out RunOutput
	s.mustCall(t, "run_command", map[string]any{"sandbox": "dev", "argv": []string{"x"}, "max_output_bytes": 1000}, &out)
	if !out.StdoutTruncated || out.StdoutBytes != 6000 {
		t.Errorf("truncated %v bytes %d", out.StdoutTruncated, out.StdoutBytes)
	}
	want := strings.Repeat("a", 500) + "\n[… 5000 bytes cut …]\n" + strings.Repeat("z", 500)
	if out.Stdout != want {
		t.Errorf("stdout %q…, want the start, a marker and the end", out.Stdout[:min(len(out.Stdout), 600)])
	}
}

func TestRunCommandTimesOut(t *testing.T) {
	d, s := withVM(t)
	d.run = func(_ api.ExecRequest, _ string, sig <-chan byte) (string, string, proto.ExitStatus) {
		select {
		case n := <-sig:
			return "partial", "", proto.ExitStatus{Code: 128 + int(n), Signal: "killed"}
		case <-time.After(20 * time.Second):
			return "", "", proto.ExitStatus{}
		}
	}
	var out RunOutput
	start := time.Now()
	s.mustCall(t, "run_command", map[string]any{"sandbox": "dev", "argv": []string{"sleep", "inf"}, "timeout_seconds": 1}, &out)
	if !out.TimedOut || out.ExitCode != 137 || out.Stdout != "partial" {
		t.Errorf("result %+v, want timed out with SIGKILL's code", out)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("the timeout took %v", time.Since(start))
	}
}

// A call the client cancels closes the exec stream, which ends the
// guest command.
func TestRunCommandCancelled(t *testing.T) {
	d, s := withVM(t)
	closed := make(chan struct{})
	d.run = func(_ api.ExecRequest, _ string, sig <-chan byte) (string, string, proto.ExitStatus) {
		for range sig {
		}
		close(closed)
		return "", "", proto.ExitStatus{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"sandbox": "dev", "argv": []string{"sleep", "inf"}}}); err == nil {
		t.Fatal("a cancelled call returned no error")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the exec stream stayed open after the client cancelled")
	}
}

func TestReadFile(t *testing.T) {
	d, s := withVM(t)
	d.files["/root/notes.txt"] = fakeFile{data: "héllo\n", mode: 0o600}
	d.files["/etc/bin.dat"] = fakeFile{data: "\x00\x01\xff", mode: 0o644}
	d.files["/etc/link"] = fakeFile{target: "../root/notes.txt"}
	d.files["/etc/loop"] = fakeFile{target: "loop"}
	d.files["/root/big"] = fakeFile{data: strings.Repeat("x", 100), mode: 0o644}
	var out ReadOutput
	s.mustCall(t, "read_file", map[string]any{"sandbox": "dev", "path": "notes.txt"}, &out)
	if out != (ReadOutput{Path: "/root/notes.txt", Content: "héllo\n", Encoding: "utf-8", Size: 7, Mode: "0600"}) {
		t.Errorf("text: %+v", out)
	}
	s.mustCall(t, "read_file", map[string]any{"sandbox": "dev", "path": "/etc/bin.dat"}, &out)
	if out.Encoding != "base64" || out.Content != "AAH/" {
		t.Errorf("binary: %+v", out)
	}
	s.mustCall(t, "read_file", map[string]any{"sandbox": "dev", "path": "/etc/link"}, &out)
	if out.Path != "/root/notes.txt" || out.Content != "héllo\n" {
		t.Errorf("symlink: %+v", out)
	}
	s.mustCall(t, "read_file", map[string]any{"sandbox": "dev", "path": "/root/big", "max_bytes": 10}, &out)
	if out.Content != "xxxxxxxxxx" || !out.Truncated || out.Size != 100 {
		t.Errorf("truncated: %+v", out)
	}
	s.wantError(t, "read_file", map[string]any{"sandbox": "dev", "path": "/etc"}, "is a directory")
	s.wantError(t, "read_file", map[string]any{"sandbox": "dev", "path": "/etc/loop"}, "symlinks")
	s.wantError(t, "read_file", map[string]any{"sandbox": "dev", "path": "/nope"}, "no such file")
	s.wantError(t, "read_file", map[string]any{"sandbox": "dev", "path": ""}, "path")
	s.wantError(t, "read_file", map[string]any{"sandbox": "dev", "path": "/etc/bin.dat", "max_bytes": 1 << 30}, "max_bytes")
}

func TestWriteFile(t *testing.T) {
	d, s := withVM(t)
	d.run = func(req api.ExecRequest, _ string, _ <-chan byte) (string, string, proto.ExitStatus) {
		if slices.Equal(req.Argv, []string{"mkdir", "-p", "--", "/srv/app"}) {
			d.mu.Lock()
			d.files["/srv"], d.files["/srv/app"] = fakeFile{dir: true}, fakeFile{dir: true}
			d.mu.Unlock()
			return "", "", proto.ExitStatus{}
		}
		return "", "mkdir: refused\n", proto.ExitStatus{Code: 1}
	}
	var out WriteOutput
	s.mustCall(t, "write_file", map[string]any{"sandbox": "dev", "path": "hello.sh", "content": "#!/bin/sh\necho hi\n", "mode": "0755"}, &out)
	if out.Path != "/root/hello.sh" || out.Bytes != 18 {
		t.Errorf("result %+v", out)
	}
	if f := d.files["/root/hello.sh"]; f.data != "#!/bin/sh\necho hi\n" || f.mode != 0o755 {
		t.Errorf("guest file %+v", f)
	}
	s.mustCall(t, "write_file", map[string]any{"sandbox": "dev", "path": "/root/b.bin", "content": "AAH/", "encoding": "base64"}, &out)
	if f := d.files["/root/b.bin"]; f.data != "\x00\x01\xff" || f.mode != 0o644 {
		t.Errorf("binary file %+v", f)
	}
	// A missing parent: the agent's refusal, unless create_parents.
	s.wantError(t, "write_file", map[string]any{"sandbox": "dev", "path": "/srv/app/x", "content": "x"}, "/srv/app: no such directory")
	s.mustCall(t, "write_file", map[string]any{"sandbox": "dev", "path": "/srv/app/x", "content": "x", "create_parents": true}, &out)
	if d.files["/srv/app/x"].data != "x" {
		t.Errorf("create_parents: %+v", d.files)
	}
	s.wantError(t, "write_file", map[string]any{"sandbox": "dev", "path": "/opt/y", "content": "x", "create_parents": true}, "mkdir: refused")
	s.wantError(t, "write_file", map[string]any{"sandbox": "dev", "path": "/root/z", "content": "x", "mode": "rwx"}, "mode")
	s.wantError(t, "write_file", map[string]any{"sandbox": "dev", "path": "/root/z", "content": "%%", "encoding": "base64"}, "base64")
	s.wantError(t, "write_file", map[string]any{"sandbox": "dev", "path": "/root/z", "content": "x", "encoding": "latin1"}, "encoding")
	s.wantError(t, "write_file", map[string]any{"sandbox": "dev", "path": "/", "content": "x"}, "names no file")
	s.wantError(t, "write_file", map[string]any{"sandbox": "gone", "path": "/root/z", "content": "x"}, `no VM named "gone"`)
	if _, ok := d.files["/root/z"]; ok {
		t.Error("a refused write left a file")
	}
}

func TestListDirectory(t *testing.T) {
	d, s := withVM(t)
	listing := "0\x00d\x004096\x00755\x001700000000.5\x00\x00srv\x00" +
		"1\x00f\x0012\x00644\x001700000001.0\x00\x00b file\twith tab\x00" +
		"1\x00l\x007\x00777\x001700000002.0\x00/etc/hosts\x00a-link\x00" +
		"1\x00d\x004096\x00700\x001700000003.0\x00\x00sub\x00" +
		"1\x00f\x001\x00644\x00170" // cut by the output bound
	d.run = func(req api.ExecRequest, _ string, _ <-chan byte) (string, string, proto.ExitStatus) {
		switch req.Argv[2] {
		case "/srv":
			return listing, "", proto.ExitStatus{}
		case "/root/f":
			return "0\x00f\x001\x00644\x001.0\x00\x00f\x00", "", proto.ExitStatus{}
		}
		return "", "find: '" + req.Argv[2] + "': No such file or directory\n", proto.ExitStatus{Code: 1}
	}
	var out ListDirOutput
	s.mustCall(t, "list_directory", map[string]any{"sandbox": "dev", "path": "/srv"}, &out)
	if !slices.Equal(d.execs[0].Argv, listArgv("/srv")) {
		t.Errorf("argv %q", d.execs[0].Argv)
	}
	var names []string
	for _, e := range out.Entries {
		names = append(names, e.Name+":"+e.Type+":"+e.Mode+":"+e.Target)
	}
	if want := []string{"a-link:symlink:0777:/etc/hosts", "b file\twith tab:file:0644:", "sub:directory:0700:"}; !slices.Equal(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}
	if e := out.Entries[1]; e.Size != 12 || !e.Modified.Equal(time.Unix(1700000001, 0)) {
		t.Errorf("entry %+v", e)
	}
	s.mustCall(t, "list_directory", map[string]any{"sandbox": "dev", "path": "/srv", "max_entries": 2}, &out)
	if len(out.Entries) != 2 || !out.Truncated {
		t.Errorf("max_entries 2: %d entries, truncated %v", len(out.Entries), out.Truncated)
	}
	s.wantError(t, "list_directory", map[string]any{"sandbox": "dev", "path": "/nope"}, "No such file or directory")
	s.wantError(t, "list_directory", map[string]any{"sandbox": "dev", "path": "f"}, "/root/f is a file, not a directory")
	s.wantError(t, "list_directory", map[string]any{"sandbox": "dev"}, "path")
}

func TestExportWorkspace(t *testing.T) {
	d, s := withVM(t)
	patch := "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n"
	d.run = func(req api.ExecRequest, _ string, _ <-chan byte) (string, string, proto.ExitStatus) {
		if req.Argv[1] == "/root/missing" {
			return "", "fatal: not a git repository\n", proto.ExitStatus{Code: 128}
		}
		return patch, "", proto.ExitStatus{}
	}
	var out ExportOutput
	s.mustCall(t, "export_workspace", map[string]any{"sandbox": "dev", "base": "HEAD~1"}, &out)
	if out.Patch != patch || out.Bytes != int64(len(patch)) || out.Truncated {
		t.Errorf("inline: %+v", out)
	}
	if d.exports[0].Base != "HEAD~1" {
		t.Errorf("export params %+v", d.exports[0])
	}
	s.mustCall(t, "export_workspace", map[string]any{"sandbox": "dev", "max_bytes": 10}, &out)
	if out.Patch != patch[:10] || !out.Truncated || out.Bytes != int64(len(patch)) {
		t.Errorf("cut: %+v", out)
	}
	s.mustCall(t, "export_workspace", map[string]any{"sandbox": "dev", "output_path": "fix.patch"}, &out)
	b, err := os.ReadFile(filepath.Join(s.dir, "fix.patch"))
	if err != nil || string(b) != patch || out.WrittenTo != filepath.Join(s.dir, "fix.patch") || out.Patch != "" {
		t.Errorf("to a file: %+v, file %q %v", out, b, err)
	}
	// A failed export leaves the earlier file as it was.
	s.wantError(t, "export_workspace", map[string]any{"sandbox": "dev", "guest_path": "/root/missing", "output_path": "fix.patch"}, "not a git repository")
	if b, _ := os.ReadFile(filepath.Join(s.dir, "fix.patch")); string(b) != patch {
		t.Errorf("a failed export changed the file: %q", b)
	}
	s.wantError(t, "export_workspace", map[string]any{"sandbox": "dev", "guest_path": "/etc"}, "guest_path")
	s.wantError(t, "export_workspace", map[string]any{"sandbox": "dev", "output_path": "/nonexistent/dir/p"}, "output_path")
	s.wantError(t, "export_workspace", map[string]any{"sandbox": "nope"}, `no VM named "nope"`)
}

func TestClipBuffer(t *testing.T) {
	for _, tc := range []struct {
		limit  int
		writes []string
		want   string
	}{
		{10, []string{"hello"}, "hello"},
		{10, []string{"0123456789"}, "0123456789"},
		{10, []string{"0123456789", "ab"}, "01234\n[… 2 bytes cut …]\n789ab"},
		{4, []string{"a", "b", "c", "d", "e", "f", "g"}, "ab\n[… 3 bytes cut …]\nfg"},
		{4, []string{"abcdefghijkl"}, "ab\n[… 8 bytes cut …]\nkl"},
	} {
		b := newClipBuffer(tc.limit)
		for _, w := range tc.writes {
			b.Write([]byte(w))
		}
		if got := b.String(); got != tc.want {
			t.Errorf("limit %d, writes %q: %q, want %q", tc.limit, tc.writes, got, tc.want)
		}
	}
}
