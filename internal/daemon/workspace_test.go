package daemon

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/workspace"
)

// guestRoot points the fake VMM's agent (which runs on the host) at a
// temporary directory standing for the guest's "/". It must be set
// before the daemon starts.
func guestRoot(t *testing.T) string {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "root"), 0o700)
	old := guestFS
	guestFS = func(p string) string { return filepath.Join(root, p) }
	t.Cleanup(func() { guestFS = old })
	return root
}

// gitRepo builds a small repository with one commit and an untracked
// secret.
func gitRepo(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "repo")
	os.MkdirAll(dir, 0o755)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}} {
		gitT(t, dir, args...)
	}
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644)
	gitT(t, dir, "add", "-A")
	gitT(t, dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one")
	os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=1\n"), 0o600)
	return dir
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// archiveOf plans an import of repo as the CLI does and builds its
// archive in memory, as the CLI would send it.
func archiveOf(t *testing.T, repo string, o workspace.Options, guestPath string) (api.WorkspaceSpec, []byte) {
	t.Helper()
	o.Repo = repo
	plan, err := workspace.Make(context.Background(), o)
	must(t, err)
	guest, err := workspace.GuestPath(guestPath)
	must(t, err)
	var b bytes.Buffer
	must(t, plan.Send(context.Background(), &b))
	return plan.Spec(guest), b.Bytes()
}

func (h *harness) prepare(name string, spec api.WorkspaceSpec, body io.Reader) (api.Workspace, error) {
	return h.prepareCtx(context.Background(), name, spec, body, nil)
}

func (h *harness) prepareCtx(ctx context.Context, name string, spec api.WorkspaceSpec, body io.Reader, onStage func()) (api.Workspace, error) {
	return h.client.WorkspacePrepare(ctx, api.WorkspacePrepareParams{Name: name, WorkspaceSpec: spec}, body, func(p api.Progress) {
		if p.Stage == "workspace" && onStage != nil {
			onStage()
		}
	})
}

// runWorkspace is vm.run with a repository whose archive is body.
func (h *harness) runWorkspace(p api.RunParams, body io.Reader) (string, proto.ExitStatus, []string, error) {
	var stages []string
	conn, _, err := h.client.VMRunWorkspace(context.Background(), p, body, func(p api.Progress) { stages = append(stages, p.Stage) })
	if err != nil {
		return "", proto.ExitStatus{}, stages, err
	}
	defer conn.Close()
	var out, errb bytes.Buffer
	st, err := proto.PumpExec(conn, strings.NewReader(""), &out, &errb, nil)
	return out.String(), st, stages, err
}

func (h *harness) export(p api.WorkspaceExportParams) (string, string, proto.ExitStatus) {
	h.t.Helper()
	conn, err := h.client.WorkspaceExport(context.Background(), p)
	must(h.t, err)
	defer conn.Close()
	var out, errb bytes.Buffer
	st, err := proto.PumpExec(conn, nil, &out, &errb, nil)
	must(h.t, err)
	return out.String(), errb.String(), st
}

// guestEmpty waits until the guest's /root holds nothing: the agent
// drops a cut-short copy asynchronously.
func guestEmpty(t *testing.T, root string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(filepath.Join(root, "root"))
		if len(ents) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in the guest home: %v", ents)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWorkspacePrepareAndExport(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	spec, arch := archiveOf(t, gitRepo(t), workspace.Options{}, "")
	if _, err := h.prepare("ghost", spec, bytes.NewReader(arch)); !isCode(err, api.CodeNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
	h.create("dev")
	ws, err := h.prepare("dev", spec, bytes.NewReader(arch))
	must(t, err)
	guest := filepath.Join(root, "root", "repo")
	if ws.GuestPath != "/root/repo" || ws.Files != 1 || ws.Branch != "main" || ws.Commit != spec.Commit || ws.Bytes == 0 {
		t.Errorf("result %+v", ws)
	}
	if b, _ := os.ReadFile(filepath.Join(guest, "main.go")); string(b) != "package main\n" {
		t.Errorf("main.go = %q", b)
	}
	if _, err := os.Stat(filepath.Join(guest, ".env")); err == nil {
		t.Error("the untracked secret reached the guest")
	}
	// A second import to the same place is refused, the first kept.
	_, err = h.prepare("dev", spec, bytes.NewReader(arch))
	if !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second import: %v", err)
	}

	os.WriteFile(filepath.Join(guest, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	patch, stderr, st := h.export(api.WorkspaceExportParams{Name: "dev"})
	if st.Code != 0 || !strings.Contains(patch, "+func main() {}") {
		t.Fatalf("export: %+v %q\n%s", st, stderr, patch)
	}
	names, _, _ := h.export(api.WorkspaceExportParams{Name: "dev", NameOnly: true})
	if names != "main.go\n" {
		t.Errorf("names %q", names)
	}
	_, stderr, st = h.export(api.WorkspaceExportParams{Name: "dev", GuestPath: "~/nothing"})
	if st.Code != 3 || !strings.Contains(stderr, "no workspace at") {
		t.Errorf("export of a missing workspace: %+v %q", st, stderr)
	}
}

// TestWorkspacePrepareWithoutTheRepositoryOnTheDaemonSide: the daemon
// never opens the client's repository. The CLI's plan and archive are
// built, then the repository is removed before the call: the import
// still lands in the guest, history included.
func TestWorkspacePrepareWithoutTheRepositoryOnTheDaemonSide(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	h.create("dev")
	repo := gitRepo(t)
	os.WriteFile(filepath.Join(repo, "lib.go"), []byte("package lib\n"), 0o644)
	gitT(t, repo, "add", "lib.go")
	gitT(t, repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "two")
	spec, arch := archiveOf(t, repo, workspace.Options{IncludeUntracked: true}, "~/src/app")
	must(t, os.RemoveAll(filepath.Dir(repo)))
	if _, err := os.Stat(repo); !os.IsNotExist(err) {
		t.Fatalf("the repository is still there: %v", err)
	}
	ws, err := h.prepare("dev", spec, bytes.NewReader(arch))
	must(t, err)
	guest := filepath.Join(root, "root", "src", "app")
	if ws.GuestPath != "/root/src/app" || ws.Files != 3 {
		t.Errorf("result %+v", ws)
	}
	for name, want := range map[string]string{"main.go": "package main\n", "lib.go": "package lib\n", ".env": "SECRET=1\n"} {
		if b, _ := os.ReadFile(filepath.Join(guest, name)); string(b) != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}
	if log := gitT(t, guest, "log", "--format=%s"); log != "two\none\n" {
		t.Errorf("guest history %q", log)
	}
}

func TestWorkspaceBadInputChangesNothing(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	h.create("dev")
	spec, arch := archiveOf(t, gitRepo(t), workspace.Options{}, "")
	trailer := bytes.LastIndex(arch, []byte(`{"done":true`))
	if trailer < 0 {
		t.Fatal("the archive has no trailer")
	}
	bad := spec
	bad.GuestPath = "/etc/x"
	if _, err := h.prepare("dev", bad, bytes.NewReader(arch)); !isCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), "must be below /root/") {
		t.Errorf("guest path outside home: %v", err)
	}
	for _, tc := range []struct {
		what string
		body []byte
		want string
	}{
		{"an archive cut in half", arch[:len(arch)/2], "import into dev: "},
		{"an archive without its trailer", arch[:trailer], "the archive ended without the host's trailer"},
		{"no archive at all", nil, "import into dev: "},
		{"not an archive", []byte(strings.Repeat("not a tar stream\n", 100)), "import into dev: "},
	} {
		_, err := h.prepare("dev", spec, bytes.NewReader(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.what, err, tc.want)
		}
		t.Logf("%s: %v", tc.what, err)
		guestEmpty(t, root)
	}
	// The VM takes a whole archive after all that.
	_, err := h.prepare("dev", spec, bytes.NewReader(arch))
	must(t, err)
	os.RemoveAll(filepath.Join(root, "root", "repo"))

	// A stopped VM takes no import and gives no export.
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	_, err = h.prepare("dev", spec, bytes.NewReader(arch))
	if !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "vm start dev") {
		t.Errorf("stopped VM: %v", err)
	}
	if _, err := h.client.WorkspaceExport(context.Background(), api.WorkspaceExportParams{Name: "dev"}); !isCode(err, api.CodeConflict) {
		t.Errorf("export from a stopped VM: %v", err)
	}
	guestEmpty(t, root)
}

func TestRunWithRepositoryRunsInIt(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	spec, arch := archiveOf(t, gitRepo(t), workspace.Options{IncludeUntracked: true}, "")
	p := api.RunParams{ExecRequest: api.ExecRequest{Argv: []string{"sh", "-c", "pwd; cat main.go; ls -A"}}, Remove: true,
		Create: api.CreateParams{Name: "once"}, Workspace: &spec}
	out, st, stages, err := h.runWorkspace(p, bytes.NewReader(arch))
	if err != nil || st.Code != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	want := filepath.Join(root, "root/repo") + "\npackage main\n.env\n.git\nmain.go\n"
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if !strings.Contains(strings.Join(stages, " "), "workspace") {
		t.Errorf("no workspace progress: %v", stages)
	}
	h.assertNoTrace(h.drv.LastSpec().ID)

	// A bad guest path fails before any VM exists.
	starts := h.drv.Starts
	bad := spec
	bad.GuestPath = "/etc"
	p.Workspace = &bad
	if _, _, _, err := h.runWorkspace(p, bytes.NewReader(arch)); !isCode(err, api.CodeInvalid) || h.drv.Starts != starts {
		t.Errorf("bad guest path: %v, %d starts", err, h.drv.Starts-starts)
	}
	// A cut-short archive fails the run, and --rm leaves nothing.
	p.Workspace = &spec
	if _, _, _, err := h.runWorkspace(p, bytes.NewReader(arch[:len(arch)/2])); err == nil || !strings.Contains(err.Error(), "import into") {
		t.Errorf("truncated archive: %v", err)
	}
	if h.drv.Starts != starts+1 {
		t.Errorf("%d starts", h.drv.Starts-starts)
	}
	h.assertNoTrace(h.drv.LastSpec().ID)
}

// gatedReader sends the first n bytes of r, then waits for release.
type gatedReader struct {
	r       io.Reader
	n       int
	release chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		<-g.release
		return g.r.Read(p)
	}
	n, err := g.r.Read(p[:min(len(p), g.n)])
	g.n -= n
	return n, err
}

// inFlight starts an import of arch whose second half waits for
// release; it returns once the daemon has started it.
func inFlight(h *harness, ctx context.Context, spec api.WorkspaceSpec, arch []byte, release chan struct{}) <-chan error {
	started, errc := make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		_, err := h.prepareCtx(ctx, "dev", spec, &gatedReader{r: bytes.NewReader(arch), n: len(arch) / 2, release: release},
			func() { once.Do(func() { close(started) }) })
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		h.t.Fatalf("import ended before streaming: %v", err)
	}
	return errc
}

func TestImportHoldsNoLockAgainstStopAndLeavesNothing(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	h.create("dev")
	spec, arch := archiveOf(t, gitRepo(t), workspace.Options{}, "")
	release := make(chan struct{})
	errc := inFlight(h, context.Background(), spec, arch, release)
	stopped := make(chan error, 1)
	go func() { stopped <- h.call(api.MethodVMDelete, api.NameParams{Name: "dev"}, nil) }()
	select {
	case err := <-stopped:
		must(t, err)
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("vm delete waited for the import")
	}
	close(release)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "stopped during the copy") {
		t.Errorf("import into a deleted VM: %v", err)
	}
	guestEmpty(t, root)
}

func TestImportsIntoOneVMAreSerialised(t *testing.T) {
	guestRoot(t)
	h := newHarness(t)
	h.create("dev")
	spec, arch := archiveOf(t, gitRepo(t), workspace.Options{}, "~/a")
	release := make(chan struct{})
	first := inFlight(h, context.Background(), spec, arch, release)
	spec.GuestPath = "/root/b"
	second := make(chan error, 1)
	started := make(chan struct{}, 1)
	go func() {
		_, err := h.prepareCtx(context.Background(), "dev", spec, bytes.NewReader(arch), func() { started <- struct{}{} })
		second <- err
	}()
	select {
	case <-started:
		t.Error("a second import started while the first was in flight")
	case err := <-second:
		t.Errorf("the second import ended while the first was in flight: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	must(t, <-first)
	must(t, <-second)
}

// TestImportAbandonedByItsClientLeavesNothing: Ctrl-C mid-stream (half
// the archive sent) closes the connection; the guest keeps nothing and
// the VM takes the next import.
func TestImportAbandonedByItsClientLeavesNothing(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	h.create("dev")
	spec, arch := archiveOf(t, gitRepo(t), workspace.Options{}, "")
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	defer close(release)
	errc := inFlight(h, ctx, spec, arch, release)
	// The agent is building the copy beside its target.
	deadline := time.Now().Add(10 * time.Second)
	for ents, _ := os.ReadDir(filepath.Join(root, "root")); len(ents) == 0; ents, _ = os.ReadDir(filepath.Join(root, "root")) {
		if time.Now().After(deadline) {
			t.Fatal("the copy never started in the guest")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // Ctrl-C: the connection closes
	if err := <-errc; err == nil {
		t.Error("a cancelled import succeeded")
	}
	guestEmpty(t, root)
	_, err := h.prepare("dev", spec, bytes.NewReader(arch))
	must(t, err)
}
