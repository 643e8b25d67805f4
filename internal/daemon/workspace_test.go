package daemon

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
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

func (h *harness) export(p api.WorkspaceExportParams) (string, string, proto.ExitStatus) {
	h.t.Helper()
	conn, err := h.client.Stream(context.Background(), api.MethodWorkspaceExport, p, nil, nil)
	must(h.t, err)
	defer conn.Close()
	var out, errb bytes.Buffer
	st, err := proto.PumpExec(conn, nil, &out, &errb, nil)
	must(h.t, err)
	return out.String(), errb.String(), st
}

func TestWorkspacePrepareAndExport(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	repo := gitRepo(t)
	spec := api.WorkspaceSpec{Repo: repo}
	if err := h.call(api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "ghost", WorkspaceSpec: spec}, nil); !isCode(err, api.CodeNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
	h.create("dev")
	var ws api.Workspace
	must(t, h.call(api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: spec}, &ws))
	guest := filepath.Join(root, "root", "repo")
	if ws.GuestPath != "/root/repo" || ws.Files != 1 || ws.Branch != "main" {
		t.Errorf("result %+v", ws)
	}
	if b, _ := os.ReadFile(filepath.Join(guest, "main.go")); string(b) != "package main\n" {
		t.Errorf("main.go = %q", b)
	}
	if _, err := os.Stat(filepath.Join(guest, ".env")); err == nil {
		t.Error("the untracked secret reached the guest")
	}
	// A second import to the same place is refused, the first kept.
	err := h.call(api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: spec}, nil)
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

func TestWorkspaceBadInputChangesNothing(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	h.create("dev")
	repo := gitRepo(t)
	for _, tc := range []struct {
		spec api.WorkspaceSpec
		want string
	}{
		{api.WorkspaceSpec{Repo: t.TempDir()}, "not a git repository"},
		{api.WorkspaceSpec{Repo: filepath.Join(repo, "nope")}, "does not exist"},
		{api.WorkspaceSpec{Repo: repo, GuestPath: "/etc/x"}, "must be below /root/"},
		{api.WorkspaceSpec{Repo: repo, From: "nope", Branch: "b"}, "no such commit"},
		{api.WorkspaceSpec{Repo: repo, From: "HEAD"}, "--from needs --branch"},
	} {
		err := h.call(api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: tc.spec}, nil)
		if !isCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want invalid %q", tc.spec, err, tc.want)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "root")); len(ents) != 0 {
		t.Errorf("guest home holds %v", ents)
	}
	// A stopped VM takes no import and gives no export.
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	err := h.call(api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: api.WorkspaceSpec{Repo: repo}}, nil)
	if !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "vm start dev") {
		t.Errorf("stopped VM: %v", err)
	}
	if _, err := h.client.Stream(context.Background(), api.MethodWorkspaceExport, api.WorkspaceExportParams{Name: "dev"}, nil, nil); !isCode(err, api.CodeConflict) {
		t.Errorf("export from a stopped VM: %v", err)
	}
}

func TestRunWithRepositoryRunsInIt(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	repo := gitRepo(t)
	out, st, err := h.run(api.RunParams{Remove: true, Create: api.CreateParams{Name: "once"}, Workspace: &api.WorkspaceSpec{Repo: repo, IncludeUntracked: true}, ExecRequest: api.ExecRequest{Argv: []string{"sh", "-c", "pwd; cat main.go; ls -A"}}})
	if err != nil || st.Code != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	want := filepath.Join(root, "root/repo") + "\npackage main\n.env\n.git\nmain.go\n"
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	h.assertNoTrace(h.drv.LastSpec().ID)

	// A bad repository fails before any VM exists.
	starts := h.drv.Starts
	_, err = h.client.Stream(context.Background(), api.MethodVMRun, api.RunParams{Workspace: &api.WorkspaceSpec{Repo: t.TempDir()}, ExecRequest: api.ExecRequest{Argv: []string{"true"}}}, nil, nil)
	if !isCode(err, api.CodeInvalid) || h.drv.Starts != starts {
		t.Errorf("bad repo: %v, %d starts", err, h.drv.Starts-starts)
	}
}

// blockArchive makes every import wait, once streaming, until release is
// closed; started receives one value per import that got there.
func blockArchive(t *testing.T) (started chan struct{}, release chan struct{}, maxInFlight *int32) {
	started, release = make(chan struct{}, 4), make(chan struct{})
	var inFlight, max int32
	old := archiveStarting
	archiveStarting = func() {
		n := atomic.AddInt32(&inFlight, 1)
		for m := atomic.LoadInt32(&max); n > m && !atomic.CompareAndSwapInt32(&max, m, n); m = atomic.LoadInt32(&max) {
		}
		started <- struct{}{}
		<-release
		atomic.AddInt32(&inFlight, -1)
	}
	t.Cleanup(func() { archiveStarting = old })
	return started, release, &max
}

func TestImportHoldsNoLockAgainstStopAndLeavesNothing(t *testing.T) {
	root := guestRoot(t)
	started, release, _ := blockArchive(t)
	h := newHarness(t)
	h.create("dev")
	repo := gitRepo(t)
	errc := make(chan error, 1)
	go func() {
		errc <- h.call(api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: api.WorkspaceSpec{Repo: repo}}, nil)
	}()
	<-started
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
	if ents, _ := os.ReadDir(filepath.Join(root, "root")); len(ents) != 0 {
		t.Errorf("partial copy left: %v", ents)
	}
}

func TestImportsIntoOneVMAreSerialised(t *testing.T) {
	guestRoot(t)
	started, release, max := blockArchive(t)
	h := newHarness(t)
	h.create("dev")
	repo := gitRepo(t)
	var wg sync.WaitGroup
	for _, p := range []string{"~/a", "~/b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.call(api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "dev",
				WorkspaceSpec: api.WorkspaceSpec{Repo: repo, GuestPath: p}}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	<-started
	select {
	case <-started:
		t.Error("a second import streamed while the first was in flight")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	wg.Wait()
	if atomic.LoadInt32(max) != 1 {
		t.Errorf("%d imports in flight at once", *max)
	}
}

func TestImportAbandonedByItsClientLeavesNothing(t *testing.T) {
	root := guestRoot(t)
	started, release, _ := blockArchive(t)
	h := newHarness(t)
	h.create("dev")
	repo := gitRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- h.client.Call(ctx, api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "dev",
			WorkspaceSpec: api.WorkspaceSpec{Repo: repo}}, nil, nil)
	}()
	<-started
	cancel() // Ctrl-C: the connection closes
	<-errc
	time.Sleep(100 * time.Millisecond) // the daemon notices the disconnect
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(filepath.Join(root, "root"))
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in the guest home: %v", ents)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The VM is fine and takes the next import.
	must(t, h.call(api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: api.WorkspaceSpec{Repo: repo}}, nil))
}
