package cli_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/rpc"
)

// cliRepo is a committed repository with an untracked .env.
func cliRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte("test:\n\ttrue\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "build.sh"), []byte("#!/bin/sh\n"), 0o755)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=1\n"), 0o600)
	return dir
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}

func noDial(t *testing.T) func(context.Context) (net.Conn, error) {
	return func(context.Context) (net.Conn, error) {
		t.Error("dialed the daemon")
		return nil, errors.New("must not dial")
	}
}

func TestWorkspaceDryRunNeedsNoDaemon(t *testing.T) {
	repo := cliRepo(t)
	for _, args := range [][]string{
		{"vm", "workspace", "prepare", "dev", repo, "--dry-run"},
		{"vm", "run", "--rm", "--dry-run", repo, "--", "make", "test"},
	} {
		env, out, errb := newEnv(t, noDial(t), "")
		if code := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		if out.String() != "100644 commit    Makefile\n100755 commit    build.sh\n" {
			t.Errorf("listing:\n%s", out.String())
		}
		if !strings.Contains(errb.String(), "1 untracked file not copied (--include-untracked") ||
			!strings.Contains(errb.String(), "dry run: 2 files") || !strings.Contains(errb.String(), "→ /root/repo") {
			t.Errorf("stderr %q", errb.String())
		}
	}
	env, out, _ := newEnv(t, noDial(t), "")
	runCLI(t, env, "vm", "workspace", "prepare", "dev", repo, "--dry-run", "--include-untracked")
	if !strings.Contains(out.String(), "100600 untracked .env\n") {
		t.Errorf("listing with untracked:\n%s", out.String())
	}
}

// archiveFiles reads a workspace archive (tar stream and trailer) into
// name → contents for the regular files outside .git.
func archiveFiles(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	files := map[string]string{}
	_, err := agentclient.ReadArchive(r, func(h *tar.Header, r io.Reader) error {
		if h.Typeflag == tar.TypeReg && !strings.HasPrefix(h.Name, ".git/") {
			b, _ := io.ReadAll(r)
			files[h.Name] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Errorf("archive: %v", err)
	}
	return files
}

// runBodyHandler stubs vm.run with a repository: it takes the params and
// the archive (the request body), then runs nothing and exits 0.
func runBodyHandler(params chan<- api.RunParams, bodies chan<- []byte) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		var p api.RunParams
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		params <- p
		if p.Workspace != nil {
			b, err := io.ReadAll(c.Body())
			if err != nil {
				return nil, err
			}
			bodies <- b
		}
		conn, _, err := c.Upgrade(api.VM{Name: "run-1", State: "running"})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		proto.WriteFrame(conn, proto.FrameExit, []byte(`{"code":0}`))
		return nil, rpc.ErrUpgraded
	}
}

func TestVMRunRepositorySendsWorkspace(t *testing.T) {
	repo := cliRepo(t)
	head := strings.TrimSpace(gitOut(t, repo, "rev-parse", "HEAD"))
	params, bodies := make(chan api.RunParams, 1), make(chan []byte, 1)
	d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: runBodyHandler(params, bodies)})
	env, _, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "run", "--rm", "--include-untracked", "--guest-path", "~/src", repo, "--", "make", "test"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := <-params
	want := api.RunParams{ExecRequest: api.ExecRequest{Argv: []string{"make", "test"}}, Remove: true,
		Workspace: &api.WorkspaceSpec{GuestPath: "/root/src", Commit: head, Branch: "main", Files: 3}}
	if got.Workspace != nil && (!strings.HasPrefix(got.Workspace.Summary, "3 files, ") || !strings.HasSuffix(got.Workspace.Summary, "on branch main")) {
		t.Errorf("summary %q", got.Workspace.Summary)
	} else if got.Workspace != nil {
		got.Workspace.Summary = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("daemon got %+v (workspace %+v)\nwant %+v", got, got.Workspace, want.Workspace)
	}
	files := archiveFiles(t, bytes.NewReader(<-bodies))
	if files["Makefile"] != "test:\n\ttrue\n" || files[".env"] != "SECRET=1\n" || len(files) != 3 {
		t.Errorf("archive files %v", files)
	}
	// A first argument that is not a directory is still the command.
	d2 := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: runBodyHandler(params, bodies)})
	env, _, _ = newEnv(t, d2.dial, "")
	runCLI(t, env, "vm", "run", "--rm", "echo", "--", "x")
	if got := <-params; got.Workspace != nil || !reflect.DeepEqual(got.Argv, []string{"echo", "--", "x"}) {
		t.Errorf("command with --: %+v", got)
	}
}

// TestWorkspacePrepareSendsTheArchive: the CLI sends the plan's archive
// as the request body; the daemon is told no host path.
func TestWorkspacePrepareSendsTheArchive(t *testing.T) {
	repo := cliRepo(t)
	got := make(chan api.WorkspacePrepareParams, 1)
	bodies := make(chan []byte, 1)
	d := startDaemon(t, map[string]rpc.Handler{api.MethodWorkspacePrepare: func(ctx context.Context, c *rpc.Call) (any, error) {
		var p api.WorkspacePrepareParams
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		got <- p
		b, err := io.ReadAll(c.Body())
		if err != nil {
			return nil, err
		}
		bodies <- b
		c.Progress("workspace", p.Summary+" → "+p.GuestPath)
		return api.Workspace{VM: p.Name, GuestPath: p.GuestPath, Commit: p.Commit, Branch: p.Branch, Files: p.Files, Seconds: 0.5}, nil
	}})
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "workspace", "prepare", "dev", repo); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	p := <-got
	if raw, _ := json.Marshal(p); strings.Contains(string(raw), repo) {
		t.Errorf("the daemon was told the host path: %s", raw)
	}
	if p.Name != "dev" || p.GuestPath != "/root/repo" || p.Files != 2 || p.Branch != "main" {
		t.Errorf("params %+v", p)
	}
	if files := archiveFiles(t, bytes.NewReader(<-bodies)); len(files) != 2 || files["build.sh"] != "#!/bin/sh\n" {
		t.Errorf("archive files %v", files)
	}
	if !strings.HasPrefix(out.String(), "dev:/root/repo: 2 files, commit ") {
		t.Errorf("stdout %q", out.String())
	}
}

func TestWorkspaceBadInputNeverReachesTheDaemon(t *testing.T) {
	repo := cliRepo(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"vm", "workspace", "prepare", "dev", repo, "--from", "HEAD"}, cli.ExitUsage, "--from needs --branch"},
		{[]string{"vm", "workspace", "prepare", "dev", repo, "--guest-path", "/etc/x"}, cli.ExitUsage, "must be below /root/"},
		{[]string{"vm", "workspace", "prepare", "dev"}, cli.ExitUsage, "expected a VM name and a repository path"},
		{[]string{"vm", "workspace", "export"}, cli.ExitUsage, "expected one VM name"},
		{[]string{"vm", "workspace", "export", "dev", "--guest-path", "/tmp"}, cli.ExitUsage, "must be below /root/"},
		{[]string{"vm", "run", "--include-untracked", "--", "true"}, cli.ExitUsage, "workspace flags need a repository"},
		{[]string{"vm", "workspace", "prepare", "dev", t.TempDir()}, cli.ExitError, "not a git repository"},
		{[]string{"vm", "workspace", "prepare", "dev", filepath.Join(repo, "missing")}, cli.ExitError, "does not exist"},
		{[]string{"vm", "workspace", "prepare", "dev", repo, "--from", "nope", "--branch", "x"}, cli.ExitError, "no such commit"},
	} {
		env, out, errb := newEnv(t, noDial(t), "")
		if code := runCLI(t, env, tc.args...); code != tc.code || !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q), stdout %q", tc.args, code, tc.code, errb.String(), tc.want, out.String())
		}
	}
}

// exportHandler stubs vm.workspace.export with a guest that prints
// stdout and stderr and exits with code.
func exportHandler(stdout, stderr string, code int) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		conn, br, err := c.Upgrade(api.VM{Name: "dev"})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		for {
			if typ, _, err := proto.ReadFrame(br); err != nil || typ == proto.FrameStdinEOF {
				break
			}
		}
		if stdout != "" {
			proto.WriteFrame(conn, proto.FrameStdout, []byte(stdout))
		}
		if stderr != "" {
			proto.WriteFrame(conn, proto.FrameStderr, []byte(stderr))
		}
		proto.WriteFrame(conn, proto.FrameExit, []byte(`{"code":`+string(rune('0'+code))+`}`))
		return nil, rpc.ErrUpgraded
	}
}

func TestWorkspaceExportOutputFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "fix.patch")
	d := startDaemon(t, map[string]rpc.Handler{api.MethodWorkspaceExport: exportHandler("diff --git a/x b/x\n", "", 0)})
	env, stdout, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "workspace", "export", "dev", "-o", out); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "diff --git a/x b/x\n" || stdout.Len() != 0 {
		t.Errorf("file %q, stdout %q", b, stdout.String())
	}

	// A failed export leaves the old file alone and no temporary file;
	// the guest's stderr cannot drive the terminal.
	d = startDaemon(t, map[string]rpc.Handler{api.MethodWorkspaceExport: exportHandler("partial", "no workspace\x1b[2J here\n", 3)})
	env, _, errb = newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "workspace", "export", "dev", "-o", out); code != cli.ExitError {
		t.Fatalf("exit %d", code)
	}
	if b, _ := os.ReadFile(out); string(b) != "diff --git a/x b/x\n" {
		t.Errorf("file replaced by a failed export: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in %s: %v", dir, ents)
	}
	if !strings.Contains(errb.String(), "no workspace?[2J here") {
		t.Errorf("stderr %q", errb.String())
	}

	// Nothing changed: empty output, exit 0, a note.
	d = startDaemon(t, map[string]rpc.Handler{api.MethodWorkspaceExport: exportHandler("", "", 0)})
	env, stdout, errb = newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "workspace", "export", "dev"); code != 0 || stdout.Len() != 0 || !strings.Contains(errb.String(), "no changes since the import") {
		t.Errorf("empty export: exit %d, stdout %q, stderr %q", code, stdout.String(), errb.String())
	}
}
