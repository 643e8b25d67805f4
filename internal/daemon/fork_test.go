package daemon

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vms"
)

// Issue 14 through the daemon with the fake VMM: vm fork of a running,
// a paused VM and a snapshot; limits; failure cleanup; reconcile of a
// fork the daemon did not finish.

// reidents records the reidentify calls (the fake's agent runs on the
// host: the real op would rename and renumber the host).
type reidents struct {
	mu    sync.Mutex
	calls []proto.ReidentifyParams
	fail  func(proto.ReidentifyParams) error
}

func (r *reidents) list() []proto.ReidentifyParams {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]proto.ReidentifyParams(nil), r.calls...)
}

// reidentify is GuestClock.Reidentify recording the call.
func (r *reidents) reidentify(_ *agentclient.Client, _ context.Context, p proto.ReidentifyParams) (proto.ReidentifyResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(p); err != nil {
			return proto.ReidentifyResult{}, err
		}
	}
	r.calls = append(r.calls, p)
	return proto.ReidentifyResult{SSHD: "reloaded"}, nil
}

func newForkHarness(t *testing.T, n *hostnet.Fake) (*harness, *reidents) {
	t.Helper()
	rec := &reidents{}
	old := guestClock
	guestClock = vms.GuestClock{
		SetTime:    func(*agentclient.Client, context.Context, time.Time) error { return nil },
		Reseed:     func(*agentclient.Client, context.Context, []byte) error { return nil },
		Reidentify: rec.reidentify,
	}
	t.Cleanup(func() { guestClock = old })
	if n == nil {
		n = hostnet.NewFake(netip.MustParsePrefix("10.9.0.0/24"))
	}
	return newHarnessOn(t, n), rec
}

func (h *harness) fork(p api.ForkParams) (api.ForkResult, error) {
	var res api.ForkResult
	err := h.call(api.MethodVMFork, p, &res)
	return res, err
}

func (h *harness) names() map[string]string {
	h.t.Helper()
	var list []api.VM
	must(h.t, h.call(api.MethodVMList, nil, &list))
	out := map[string]string{}
	for _, v := range list {
		out[v.Name] = v.State
	}
	return out
}

func TestForkRunningVMMakesWholeChildren(t *testing.T) {
	h, rec := newForkHarness(t, nil)
	dev := h.create("dev")
	// the parent's disk as of the fork
	overlay := h.paths.VMDir(dev.ID) + "/overlay.ext4"
	must(t, os.WriteFile(overlay, []byte("parent's overlay"), 0o600))
	pauses := h.drv.Pauses
	res, err := h.fork(api.ForkParams{Name: "dev", Count: 3, As: "try"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Children) != 3 || res.Parent != "dev" || h.drv.Pauses != pauses+1 {
		t.Fatalf("result %+v, pauses %d→%d", res, pauses, h.drv.Pauses)
	}
	if got := h.names(); got["dev"] != store.StateRunning || len(got) != 4 {
		t.Fatalf("vms after the fork: %v", got)
	}
	// children map the fork's template memory privately; the template's
	// VMM and TAP are gone
	if last := h.drv.LastSpec(); last.Memory.Shared || filepath.Base(last.Memory.File) != "mem" || filepath.Base(last.Restore) != "shared" {
		t.Errorf("a child's spec: memory %+v, restore %s", last.Memory, last.Restore)
	}
	if h.net.TAPCount() != 4 || h.drv.Running() != 4 {
		t.Errorf("after the fork: taps %v, %d machines", h.net.TAPs, h.drv.Running())
	}
	seen := map[string]bool{}
	known, _ := os.ReadFile(filepath.Join(h.paths.SSHDir(), "known_hosts"))
	calls := rec.list()
	if len(calls) != 3 {
		t.Fatalf("%d reidentify calls", len(calls))
	}
	for _, c := range calls {
		if c.OldMAC != dev.MAC {
			t.Errorf("old mac %s, parent's is %s", c.OldMAC, dev.MAC)
		}
		for _, v := range []string{c.Hostname, c.Net.MAC, c.Net.Address, c.MachineID, c.SSHHostKeys["ssh_host_ed25519_key.pub"]} {
			if seen[v] {
				t.Errorf("%q shared between children", v)
			}
			seen[v] = true
		}
	}
	for i, c := range res.Children {
		want := []string{"try-1", "try-2", "try-3"}[i]
		if c.Name != want || c.State != store.StateRunning || c.IP == dev.IP || c.MAC == dev.MAC || c.StartedFrom != "fork of dev" {
			t.Errorf("child %d: %+v", i, c)
		}
		pub, err := os.ReadFile(vmdir.For(h.paths, c.ID).HostKeyPub())
		if err != nil || !bytes.Contains(known, bytes.Fields(pub)[1]) {
			t.Errorf("%s's host key is not pinned: %v", c.Name, err)
		}
		disk, _ := os.ReadFile(h.paths.VMDir(c.ID) + "/overlay.ext4")
		if string(disk) != "parent's overlay" {
			t.Errorf("%s's overlay is %q, not a copy of the parent's", c.Name, disk)
		}
		h.echo(c.Name, "child "+c.Name)
	}
	// a child's writes are its own
	must(t, os.WriteFile(h.paths.VMDir(res.Children[0].ID)+"/overlay.ext4", []byte("child's"), 0o600))
	if b, _ := os.ReadFile(overlay); string(b) != "parent's overlay" {
		t.Errorf("parent's disk changed: %q", b)
	}
	if left := leftovers(t, h.paths.VMDir(dev.ID)); len(left) != 0 {
		t.Errorf("fork point left behind: %v", left)
	}
	h.echo("dev", "parent alive")
	// a taken name: refused before anything is made
	if _, err := h.fork(api.ForkParams{Name: "dev", As: "try-2"}); !isCode(err, api.CodeConflict) {
		t.Errorf("fork onto a taken name: %v", err)
	}
}

func TestForkOfPausedVMKeepsItPausedAndSnapshotFork(t *testing.T) {
	h, _ := newForkHarness(t, nil)
	h.create("dev")
	must(t, h.call(api.MethodVMPause, api.NameParams{Name: "dev"}, nil))
	res, err := h.fork(api.ForkParams{Name: "dev", As: "exp"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Children) != 1 || res.Children[0].Name != "exp" || res.PausedMillis != 0 {
		t.Fatalf("fork of a paused VM: %+v", res)
	}
	if got := h.names(); got["dev"] != store.StatePaused || got["exp"] != store.StateRunning {
		t.Fatalf("states: %v", got)
	}
	h.echo("exp", "child of a paused parent")
	// a snapshot of a stopped VM forks; its present state does not
	must(t, h.call(api.MethodVMResume, api.NameParams{Name: "dev"}, nil))
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "base"}, nil))
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	if _, err := h.fork(api.ForkParams{Name: "dev"}); !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "--from") {
		t.Errorf("fork of a stopped VM: %v", err)
	}
	if _, err := h.fork(api.ForkParams{Name: "dev", From: "nope"}); !isCode(err, api.CodeNotFound) {
		t.Errorf("fork of a missing snapshot: %v", err)
	}
	res, err = h.fork(api.ForkParams{Name: "dev", From: "base", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.names(); got["dev"] != store.StateStopped || got["dev-fork-1"] != store.StateRunning || got["dev-fork-2"] != store.StateRunning {
		t.Fatalf("after a snapshot fork: %v", got)
	}
	h.echo("dev-fork-2", "from a snapshot")
}

func TestForkLimitsAreCheckedBeforeAnythingIsMade(t *testing.T) {
	// /29: .2–.6 usable beside the gateway, so four are left after dev
	h, rec := newForkHarness(t, hostnet.NewFake(netip.MustParsePrefix("10.9.0.0/29")))
	h.create("dev")
	starts := h.drv.Starts
	for _, tc := range []struct {
		p    api.ForkParams
		code string
		want string
	}{
		{api.ForkParams{Name: "dev", Count: 5}, api.CodeConflict, "addresses"},
		{api.ForkParams{Name: "dev", Count: api.MaxForkCount + 1}, api.CodeInvalid, "1 to 16"},
		{api.ForkParams{Name: "dev", As: "Bad_Name"}, api.CodeInvalid, "DNS label"},
		{api.ForkParams{Name: "dev", Count: 2, As: strings.Repeat("a", 62)}, api.CodeInvalid, "DNS label"},
		{api.ForkParams{Name: "nope"}, api.CodeNotFound, "nope"},
	} {
		_, err := h.fork(tc.p)
		if !isCode(err, tc.code) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %s %q", tc.p, err, tc.code, tc.want)
		}
	}
	if got := h.names(); len(got) != 1 || h.drv.Starts != starts || len(rec.list()) != 0 || h.net.TAPCount() != 1 {
		t.Fatalf("a refused fork made something: vms %v, starts %d→%d, taps %v", got, starts, h.drv.Starts, h.net.TAPs)
	}
	if _, err := h.fork(api.ForkParams{Name: "dev", Count: 4}); err != nil {
		t.Fatalf("four children in four free addresses: %v", err)
	}
}

func TestForkFailureRemovesEveryChild(t *testing.T) {
	h, rec := newForkHarness(t, nil)
	dev := h.create("dev")
	rec.fail = func(p proto.ReidentifyParams) error {
		if p.Hostname == "dev-fork-2" {
			return errors.New("agent says no")
		}
		return nil
	}
	_, err := h.fork(api.ForkParams{Name: "dev", Count: 3})
	if err == nil || !strings.Contains(err.Error(), "agent says no") || !strings.Contains(err.Error(), "keeps running") {
		t.Fatalf("fork with a failing child: %v", err)
	}
	if got := h.names(); len(got) != 1 || got["dev"] != store.StateRunning {
		t.Fatalf("vms after a failed fork: %v", got)
	}
	if h.net.TAPCount() != 1 || h.drv.Running() != 1 {
		t.Errorf("left: taps %v, %d machines", h.net.TAPs, h.drv.Running())
	}
	entries, _ := os.ReadDir(filepath.Dir(h.paths.VMDir(dev.ID)))
	if len(entries) != 1 {
		t.Errorf("VM directories left: %v", entries)
	}
	if left := leftovers(t, h.paths.VMDir(dev.ID)); len(left) != 0 {
		t.Errorf("fork point left: %v", left)
	}
	known, _ := os.ReadFile(filepath.Join(h.paths.SSHDir(), "known_hosts"))
	if bytes.Contains(known, []byte("dev-fork")) {
		t.Errorf("children still pinned:\n%s", known)
	}
	h.echo("dev", "still running")
}

// A daemon killed mid-fork leaves children recorded as pending (and
// whatever of them was made): the next start removes them whole, and
// keeps the children that were finished.
func TestReconcileRemovesUnfinishedForkChildren(t *testing.T) {
	h, _ := newForkHarness(t, nil)
	dev := h.create("dev")
	if _, err := h.fork(api.ForkParams{Name: "dev", As: "whole"}); err != nil {
		t.Fatal(err)
	}
	h.stop()
	st, err := store.Open(context.Background(), h.paths.Database())
	must(t, err)
	half := &store.VM{ID: "halfmade0001", Name: "half", Image: dev.Image, Kernel: dev.Kernel, VMM: "fake", VCPU: 1, MemoryMiB: 512,
		MAC: "52:54:00:12:34:56", State: store.StateCreating}
	must(t, st.ReserveForks(context.Background(), dev.ID, []*store.VM{half}, netip.MustParsePrefix("10.9.0.0/24"), netip.MustParseAddr("10.9.0.1")))
	st.Close()
	dir := vmdir.For(h.paths, half.ID)
	must(t, os.MkdirAll(dir.Path(), 0o700))
	must(t, os.WriteFile(dir.Overlay(), []byte("half a copy"), 0o600))
	must(t, h.net.CreateTAP(context.Background(), tapName(half.ID)))
	h.start()
	if got := h.names(); len(got) != 2 || got["whole"] != store.StateRunning || got["dev"] != store.StateRunning {
		t.Fatalf("after restart: %v", got)
	}
	if h.net.TAPExists(tapName(half.ID)) {
		t.Error("the unfinished child's TAP is left")
	}
	if _, err := os.Stat(dir.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the unfinished child's directory is left: %v", err)
	}
	h.echo("whole", "kept")
}
