package workspaces

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
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent"
	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/workspace"
)

// connectAgent serves an in-process guest agent (it runs on the test
// host, writing below the test's guest root).
func connectAgent(t *testing.T) *agentclient.Client {
	t.Helper()
	host, guest := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&agent.Server{}).ServeConn(ctx, guest)
		close(done)
	}()
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	c, err := agentclient.Connect(cctx, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	return c
}

// countingAgent counts the copy_in ops opened.
type countingAgent struct {
	*agentclient.Client
	opened int
}

func (a *countingAgent) Open(ctx context.Context, op string, params any) (net.Conn, json.RawMessage, error) {
	a.opened++
	return a.Client.Open(ctx, op, params)
}

type fakeGuests struct {
	vms   map[string]VM
	up    map[string]bool
	agent *countingAgent
	root  string // the guest's "/"
}

func (g *fakeGuests) Lookup(ctx context.Context, name string) (VM, error) {
	if vm, ok := g.vms[name]; ok {
		return vm, nil
	}
	return VM{}, &api.Error{Code: api.CodeNotFound, Message: "no vm " + name}
}

func (g *fakeGuests) Agent(ctx context.Context, id string) (Agent, error) {
	if !g.up[id] {
		return nil, ErrNotRunning
	}
	return g.agent, nil
}

func (g *fakeGuests) Running(id string) bool { return g.up[id] }

func newService(t *testing.T) (*Service, *fakeGuests) {
	g := &fakeGuests{vms: map[string]VM{"dev": {ID: "1", Name: "dev", State: "running"}, "off": {ID: "2", Name: "off", State: "stopped"}},
		up: map[string]bool{"1": true}, agent: &countingAgent{Client: connectAgent(t)}, root: t.TempDir()}
	os.MkdirAll(filepath.Join(g.root, "root"), 0o700)
	return New(Deps{Guests: g, GuestFS: func(p string) string { return filepath.Join(g.root, p) }}), g
}

// guestFiles lists what the guest's /root holds.
func (g *fakeGuests) guestFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(g.root, "root"), func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(filepath.Join(g.root, "root"), p); rel != "." && !strings.Contains(rel, ".git/") {
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// planned builds a repository, its plan and archive, as the CLI does.
func planned(t *testing.T) (api.WorkspaceSpec, []byte) {
	t.Helper()
	dir := t.TempDir()
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one"}} {
		if args[0] == "add" {
			os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha\n"), 0o644)
		}
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	plan, err := workspace.Make(context.Background(), workspace.Options{Repo: dir})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := plan.Send(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return plan.Spec(workspace.DefaultGuestPath), b.Bytes()
}

func code(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestPrepareRelaysTheArchive(t *testing.T) {
	s, g := newService(t)
	spec, arch := planned(t)
	var stages []string
	ws, err := s.Prepare(context.Background(), api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: spec}, bytes.NewReader(arch),
		reporter(func(p api.Progress) { stages = append(stages, p.Stage+": "+p.Message) }))
	if err != nil {
		t.Fatal(err)
	}
	if ws.VM != "dev" || ws.GuestPath != "/root/repo" || ws.Files != 1 || ws.Branch != "main" || ws.Commit != spec.Commit || ws.Bytes == 0 {
		t.Errorf("result %+v", ws)
	}
	if b, _ := os.ReadFile(filepath.Join(g.root, "root/repo/a.txt")); string(b) != "alpha\n" {
		t.Errorf("a.txt in the guest: %q", b)
	}
	if len(stages) != 1 || stages[0] != "workspace: "+spec.Summary+" → /root/repo" {
		t.Errorf("progress %q", stages)
	}
}

type reporter func(api.Progress)

func (r reporter) Report(p api.Progress) { r(p) }

func TestPrepareBadInputTouchesNoAgent(t *testing.T) {
	s, g := newService(t)
	spec, arch := planned(t)
	bad := spec
	bad.GuestPath = "/etc"
	for _, tc := range []struct {
		p          api.WorkspacePrepareParams
		code, want string
	}{
		{api.WorkspacePrepareParams{Name: "ghost", WorkspaceSpec: spec}, api.CodeNotFound, "no vm ghost"},
		{api.WorkspacePrepareParams{Name: "off", WorkspaceSpec: spec}, api.CodeConflict, "start it with `banger vm start off`"},
		{api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: bad}, api.CodeInvalid, "must be below /root/"},
	} {
		_, err := s.Prepare(context.Background(), tc.p, bytes.NewReader(arch), nil)
		if code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s %q", tc.p, err, tc.code, tc.want)
		}
	}
	if g.agent.opened != 0 {
		t.Errorf("the agent was asked %d times", g.agent.opened)
	}
	os.MkdirAll(filepath.Join(g.root, "root/repo"), 0o755)
	if _, err := s.Prepare(context.Background(), api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: spec}, bytes.NewReader(arch), nil); code(err) != api.CodeConflict ||
		!strings.Contains(err.Error(), "already exists") {
		t.Errorf("refused: %v", err)
	}
}

// failingReader yields data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestImportOfABrokenArchiveKeepsNothing(t *testing.T) {
	s, g := newService(t)
	spec, arch := planned(t)
	vm := VM{ID: "1", Name: "dev"}
	trailer := bytes.LastIndex(arch, []byte(`{"done":true`))
	for _, tc := range []struct {
		what string
		r    io.Reader
		want string
	}{
		{"cut in half", bytes.NewReader(arch[:len(arch)/2]), "(the guest keeps nothing of the archive)"},
		{"without its trailer", bytes.NewReader(arch[:trailer]), "ended without the host's trailer"},
		{"the client left", &failingReader{arch[:len(arch)/2], io.ErrUnexpectedEOF}, "import into dev: the client stopped sending the archive: unexpected EOF"},
	} {
		_, err := s.Import(context.Background(), vm, spec, tc.r, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.what, err, tc.want)
		}
	}
	if files := g.guestFiles(t); len(files) != 0 {
		t.Errorf("a broken archive left %v", files)
	}
}

// blockingReader sends data, then blocks until closed.
type blockingReader struct {
	data []byte
	stop chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		<-b.stop
		return 0, io.ErrClosedPipe
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// The agent's early refusal ends the import at once, even while the
// client's archive is still on its way.
func TestAgentRefusalEndsTheImportWithoutTheRest(t *testing.T) {
	s, g := newService(t)
	spec, _ := planned(t)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "ok.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3})
	tw.Write([]byte("ok\n"))
	tw.WriteHeader(&tar.Header{Name: "pipe", Typeflag: tar.TypeFifo, Mode: 0o644})
	tw.Flush()
	stop := make(chan struct{})
	defer close(stop)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Import(context.Background(), VM{ID: "1", Name: "dev"}, spec, &blockingReader{data: b.Bytes(), stop: stop}, nil)
		errc <- err
	}()
	select {
	case err := <-errc:
		if files := g.guestFiles(t); len(files) != 0 {
			t.Errorf("a refused archive left %v", files)
		}
		if code(err) != api.CodeConflict || !strings.Contains(err.Error(), "pipe") {
			t.Errorf("refusal: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the import waited for the rest of the archive")
	}
}

func TestImportForRunAndExport(t *testing.T) {
	s, g := newService(t)
	spec, arch := planned(t)
	if dir, err := s.ImportForRun(context.Background(), VM{ID: "1", Name: "dev"}, nil, nil, nil); dir != "" || err != nil {
		t.Errorf("no repository: %q %v", dir, err)
	}
	checked, err := CheckSpec(&spec)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := s.ImportForRun(context.Background(), VM{ID: "1", Name: "dev"}, checked, bytes.NewReader(arch), nil)
	if err != nil || dir != filepath.Join(g.root, "root/repo") {
		t.Errorf("run import: %q %v", dir, err)
	}
	vm, req, err := s.Export(context.Background(), api.WorkspaceExportParams{Name: "dev", GuestPath: "~/src", NameOnly: true})
	if err != nil || vm.ID != "1" || !strings.Contains(strings.Join(req.Env, " "), "BANGER_WS="+g.root+"/root/src BANGER_BASE= BANGER_NAME_ONLY=1") {
		t.Errorf("export: %+v %+v %v", vm, req, err)
	}
	if _, _, err := s.Export(context.Background(), api.WorkspaceExportParams{Name: "off"}); code(err) != api.CodeConflict {
		t.Errorf("export from a stopped VM: %v", err)
	}
	if _, _, err := s.Export(context.Background(), api.WorkspaceExportParams{Name: "dev", GuestPath: "/tmp"}); code(err) != api.CodeInvalid {
		t.Errorf("export outside home: %v", err)
	}
	if g.agent.opened != 1 {
		t.Errorf("copy_in opened %d times", g.agent.opened)
	}
}
