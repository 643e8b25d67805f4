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
	"sync"
	"testing"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/workspace"
)

// fakeAgent plays the guest agent's copy_in on a socket pair: it reads
// the archive to its end, checks the trailer and answers as the agent
// does. The real agent is exercised by the daemon's tests.
type fakeAgent struct {
	mu      sync.Mutex
	opened  []proto.CopyInParams
	files   map[string]string // what the last complete copy held
	refuse  string            // refuse the op itself
	refuseN int               // refuse after this many entries (0: never)
	done    chan struct{}
}

// halfCloser makes Close a half-close, as a yamux stream's is.
type halfCloser struct{ *net.UnixConn }

func (h halfCloser) Close() error { return h.CloseWrite() }

func (a *fakeAgent) Open(ctx context.Context, op string, params any) (net.Conn, json.RawMessage, error) {
	p := params.(proto.CopyInParams)
	a.mu.Lock()
	a.opened = append(a.opened, p)
	a.mu.Unlock()
	if a.refuse != "" {
		return nil, nil, &agentclient.RequestError{Op: op, Message: a.refuse}
	}
	fds, err := socketPair()
	if err != nil {
		return nil, nil, err
	}
	go a.serve(fds[1])
	return halfCloser{fds[0]}, nil, nil
}

func (a *fakeAgent) Done() <-chan struct{} { return a.done }

func (a *fakeAgent) serve(c *net.UnixConn) {
	defer c.Close()
	br := bytes.NewBuffer(nil)
	files := map[string]string{}
	var res proto.CopyResult
	tr := tar.NewReader(io.TeeReader(c, br))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			proto.WriteLine(c, proto.CopyResult{Error: "read archive: " + err.Error()})
			return
		}
		res.Entries++
		if a.refuseN > 0 && int(res.Entries) == a.refuseN {
			proto.WriteLine(c, proto.CopyResult{Error: "refused " + h.Name})
			return
		}
		b, _ := io.ReadAll(tr)
		res.Bytes += int64(len(b))
		files[h.Name] = string(b)
	}
	// The tar reader stops at the end blocks; the trailer follows.
	rest, _ := io.ReadAll(c)
	var tl proto.CopyTrailer
	if err := json.Unmarshal(bytes.TrimSpace(rest), &tl); err != nil || !tl.Done || tl.Entries != res.Entries {
		proto.WriteLine(c, proto.CopyResult{Error: "the archive ended without the host's trailer: the copy was cut short"})
		return
	}
	a.mu.Lock()
	a.files = files
	a.mu.Unlock()
	proto.WriteLine(c, res)
}

func socketPair() ([2]*net.UnixConn, error) {
	var out [2]*net.UnixConn
	dir, err := os.MkdirTemp("", "ws-sock-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
	if err != nil {
		return out, err
	}
	defer l.Close()
	c, err := net.DialUnix("unix", nil, l.Addr().(*net.UnixAddr))
	if err != nil {
		return out, err
	}
	s, err := l.AcceptUnix()
	if err != nil {
		c.Close()
		return out, err
	}
	return [2]*net.UnixConn{c, s}, nil
}

type fakeGuests struct {
	vms   map[string]VM
	up    map[string]bool
	agent *fakeAgent
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
		up: map[string]bool{"1": true}, agent: &fakeAgent{done: make(chan struct{})}}
	return New(Deps{Guests: g, GuestFS: func(p string) string { return "/guest" + p }}), g
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
	if g.agent.files["a.txt"] != "alpha\n" {
		t.Errorf("the agent got %v", g.agent.files)
	}
	if p := g.agent.opened[0]; p.Dir != "/guest/root/repo" || !p.Fresh {
		t.Errorf("copy_in %+v", p)
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
	if len(g.agent.opened) != 0 {
		t.Errorf("the agent was asked %v", g.agent.opened)
	}
	g.agent.refuse = `"/root/repo" already exists`
	if _, err := s.Prepare(context.Background(), api.WorkspacePrepareParams{Name: "dev", WorkspaceSpec: spec}, bytes.NewReader(arch), nil); code(err) != api.CodeConflict ||
		err.Error() != `import into dev: "/root/repo" already exists` {
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
	if g.agent.files != nil {
		t.Errorf("a broken archive completed: %v", g.agent.files)
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
	g.agent.refuseN = 1
	spec, arch := planned(t)
	stop := make(chan struct{})
	defer close(stop)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Import(context.Background(), VM{ID: "1", Name: "dev"}, spec, &blockingReader{data: arch[:len(arch)/2], stop: stop}, nil)
		errc <- err
	}()
	select {
	case err := <-errc:
		if code(err) != api.CodeConflict || !strings.Contains(err.Error(), "refused a.txt") {
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
	if err != nil || dir != "/guest/root/repo" {
		t.Errorf("run import: %q %v", dir, err)
	}
	vm, req, err := s.Export(context.Background(), api.WorkspaceExportParams{Name: "dev", GuestPath: "~/src", NameOnly: true})
	if err != nil || vm.ID != "1" || !strings.Contains(strings.Join(req.Env, " "), "BANGER_WS=/guest/root/src BANGER_BASE= BANGER_NAME_ONLY=1") {
		t.Errorf("export: %+v %+v %v", vm, req, err)
	}
	if _, _, err := s.Export(context.Background(), api.WorkspaceExportParams{Name: "off"}); code(err) != api.CodeConflict {
		t.Errorf("export from a stopped VM: %v", err)
	}
	if _, _, err := s.Export(context.Background(), api.WorkspaceExportParams{Name: "dev", GuestPath: "/tmp"}); code(err) != api.CodeInvalid {
		t.Errorf("export outside home: %v", err)
	}
	if len(g.agent.opened) != 1 {
		t.Errorf("copy_in opened %d times", len(g.agent.opened))
	}
}
