package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/httpapi/apikeys"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vms"
)

// fakeVMs is the VM service in memory: VMs change state as the real one
// says they do; failNext makes the next call of a method fail.
type fakeVMs struct {
	mu         sync.Mutex
	vms        map[string]*api.VM // by name
	n          int
	failNext   map[string]error
	calls      []string
	log        string
	stats      api.VMStats
	silent     bool // Create sends no progress
	lastCreate api.CreateParams
}

var _ VMs = (*fakeVMs)(nil)
var _ Snapshots = (*fakeVMs)(nil)
var _ ReaperVMs = (*fakeVMs)(nil)

func newFakeVMs() *fakeVMs {
	return &fakeVMs{vms: map[string]*api.VM{}, failNext: map[string]error{}}
}

func (f *fakeVMs) call(name string) error {
	f.calls = append(f.calls, name)
	if err := f.failNext[name]; err != nil {
		delete(f.failNext, name)
		return err
	}
	return nil
}

func (f *fakeVMs) add(name, state string) api.VM {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	vm := &api.VM{ID: fmt.Sprintf("id%04d", f.n), Name: name, State: state, Image: "debian-bookworm", VCPU: 2, MemoryMiB: 1024,
		DiskBytes: 8 << 30, CreatedAt: time.Unix(1000+int64(f.n), 0)}
	f.vms[name] = vm
	return *vm
}

func (f *fakeVMs) Create(ctx context.Context, p api.CreateParams, r progress.Reporter) (api.VM, error) {
	f.mu.Lock()
	err := f.call("create")
	f.lastCreate = p
	if err == nil && p.Image == "missing" {
		err = api.NotFoundf("image %q not found", p.Image)
	}
	if err == nil && p.Net != nil && slices.Contains(p.Net.AllowOut, "bad") {
		err = api.Invalidf("allow-out %q: not an address, CIDR or domain", "bad")
	}
	f.mu.Unlock()
	if err != nil {
		return api.VM{}, err
	}
	vm := f.add(p.Name, store.StateCreating)
	if !f.silent {
		r.Report(api.Progress{Stage: vms.StageReserved})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("boot"); err != nil {
		f.vms[p.Name].State = store.StateFailed
		return api.VM{}, err
	}
	f.vms[p.Name].State = store.StateRunning
	vm.State = store.StateRunning
	return vm, nil
}

func (f *fakeVMs) List(ctx context.Context) ([]api.VM, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []api.VM{}
	for _, vm := range f.vms {
		out = append(out, *vm)
	}
	return out, f.call("list")
}

// Show resolves like the real one: exact name or id, else a unique name
// prefix.
func (f *fakeVMs) Show(ctx context.Context, name string) (api.VM, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var match []*api.VM
	for _, vm := range f.vms {
		if vm.Name == name || vm.ID == name {
			return *vm, nil
		}
		if strings.HasPrefix(vm.Name, name) {
			match = append(match, vm)
		}
	}
	if len(match) == 1 && name != "" {
		return *match[0], nil
	}
	return api.VM{}, api.NotFoundf("vm %q not found", name)
}

func (f *fakeVMs) set(name, from, to, op string) (api.VM, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(op); err != nil {
		return api.VM{}, err
	}
	vm, ok := f.vms[name]
	if !ok {
		return api.VM{}, api.NotFoundf("vm %q not found", name)
	}
	if from != "" && !strings.Contains(from, vm.State) {
		return api.VM{}, api.Conflictf("vm %s is %s", name, vm.State)
	}
	vm.State = to
	return *vm, nil
}

func (f *fakeVMs) Delete(ctx context.Context, name string) (api.VM, error) {
	vm, err := f.set(name, "", "", "delete")
	if err == nil {
		f.mu.Lock()
		delete(f.vms, name)
		f.mu.Unlock()
	}
	return vm, err
}

func (f *fakeVMs) Stop(ctx context.Context, name string) (api.VM, error) {
	return f.set(name, "running paused", store.StateStopped, "stop")
}

func (f *fakeVMs) StopSave(ctx context.Context, name string, r progress.Reporter) (api.VM, error) {
	return f.set(name, "running paused", store.StateSaved, "stopsave")
}

func (f *fakeVMs) StartWith(ctx context.Context, p api.StartParams, r progress.Reporter) (api.VM, error) {
	return f.set(p.Name, "stopped saved", store.StateRunning, "start")
}

func (f *fakeVMs) Resume(ctx context.Context, name string, r progress.Reporter) (api.VM, error) {
	return f.set(name, "paused", store.StateRunning, "resume")
}

func (f *fakeVMs) Stats(ctx context.Context, name string) (api.VMStats, error) {
	return f.stats, nil
}

func (f *fakeVMs) Logs(ctx context.Context, p api.LogsParams) (*vms.Session, error) {
	if f.log == "" {
		return nil, api.NotFoundf("vm %s has no console log yet", p.Name)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(f.log, "\n"), "\n")
	if p.Tail > 0 && p.Tail < len(lines) {
		lines = lines[len(lines)-p.Tail:]
	}
	return vms.NewSessionForTest(api.VM{Name: p.Name}, func(c vms.Client) {
		go func() {
			defer c.Conn.Close()
			io.WriteString(c.Conn, strings.Join(lines, ""))
		}()
	}, func() {}), nil
}

func (f *fakeVMs) SnapshotCreate(ctx context.Context, p api.SnapshotParams, r progress.Reporter) (api.Snapshot, error) {
	return api.Snapshot{VM: p.Name, Name: p.Snapshot}, nil
}

func (f *fakeVMs) SnapshotList(ctx context.Context, name string) ([]api.Snapshot, error) {
	return []api.Snapshot{{VM: name, Name: "one"}}, nil
}

func (f *fakeVMs) SnapshotRestore(ctx context.Context, p api.SnapshotParams, r progress.Reporter) (api.VM, error) {
	return f.Show(ctx, p.Name)
}

func (f *fakeVMs) SnapshotDelete(ctx context.Context, p api.SnapshotParams) (api.Snapshot, error) {
	if p.Snapshot != "one" {
		return api.Snapshot{}, api.NotFoundf("no snapshot %q", p.Snapshot)
	}
	return api.Snapshot{VM: p.Name, Name: p.Snapshot}, nil
}

type fakeImages []api.Image

func (f fakeImages) List(context.Context) ([]api.Image, error) { return f, nil }

// rig is a server over fakes with a real store (SQLite in a temp dir)
// for keys and sandbox records.
type rig struct {
	t     *testing.T
	vms   *fakeVMs
	recs  *fakeRecords
	store *store.Store
	srv   *Server
	key   string
	now   time.Time
	envd  http.Handler
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys := apikeys.New(st)
	k, err := keys.Create(context.Background(), api.APIKeyParams{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, vms: newFakeVMs(), recs: &fakeRecords{m: map[string]store.Sandbox{}}, store: st, key: k.Key, now: time.Unix(1_700_000_000, 0)}
	r.build(Deps{})
	return r
}

// build (re)makes the server; d's non-zero fields win over the rig's.
func (r *rig) build(d Deps) {
	d.VMs, d.Snapshots, d.Keys, d.Records = r.vms, r.vms, apikeys.New(r.store), r.recs
	d.Images = fakeImages{{Name: "debian-bookworm", SizeBytes: 2 << 30}, {Name: "alpine"}}
	d.DefaultImage = "debian-bookworm"
	d.Now = func() time.Time { return r.now }
	r.srv = New(d)
}

// do sends a request with the rig's key (key "" sends none) and returns
// the status and body.
func (r *rig) do(method, path, body string, hdr ...string) (int, string) {
	r.t.Helper()
	return r.doKey(r.key, method, path, body, hdr...)
}

func (r *rig) doKey(key, method, path, body string, hdr ...string) (int, string) {
	r.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	r.srv.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// fakeRecords keeps sandbox records in memory (the store's own tests
// cover the SQL; here VMs are fakes, without rows to reference).
type fakeRecords struct {
	mu  sync.Mutex
	m   map[string]store.Sandbox
	err error
}

var _ Records = (*fakeRecords)(nil)

func (f *fakeRecords) PutSandbox(ctx context.Context, sb store.Sandbox) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.m[sb.VMID] = sb
	return nil
}

func (f *fakeRecords) GetSandbox(ctx context.Context, id string) (store.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sb, ok := f.m[id]
	if !ok {
		return sb, store.ErrNotFound
	}
	return sb, nil
}

func (f *fakeRecords) ListSandboxes(ctx context.Context) ([]store.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Sandbox
	for _, sb := range f.m {
		out = append(out, sb)
	}
	return out, nil
}

func (f *fakeRecords) SetSandboxDeadline(ctx context.Context, id string, dl time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sb, ok := f.m[id]
	if !ok {
		return store.ErrNotFound
	}
	sb.Deadline = dl
	f.m[id] = sb
	return nil
}

// forget drops records of VMs the fake deleted (the store cascades).
func (f *fakeRecords) forget(vms *fakeVMs) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vms.mu.Lock()
	defer vms.mu.Unlock()
	live := map[string]bool{}
	for _, vm := range vms.vms {
		live[vm.ID] = true
	}
	for id := range f.m {
		if !live[id] {
			delete(f.m, id)
		}
	}
}
