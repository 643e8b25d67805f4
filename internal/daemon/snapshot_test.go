package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vms"
)

// Issue 13 through the daemon with the fake VMM: pause/resume, stop
// --save/start, snapshots, and reconcile after a crash.

// clockCalls records the settime/reseed calls the VM service makes (the
// fake's agent runs on the host: the real ops would set the host's clock).
type clockCalls struct {
	mu             sync.Mutex
	times, reseeds int
	entropy        []byte
}

func (c *clockCalls) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.times, c.reseeds
}

func newSnapHarness(t *testing.T) (*harness, *clockCalls) {
	t.Helper()
	c := &clockCalls{}
	old := guestClock
	guestClock = vms.GuestClock{
		SetTime: func(_ *agentclient.Client, _ context.Context, tm time.Time) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			if time.Since(tm) > time.Minute {
				t.Errorf("settime with %s, not now", tm)
			}
			c.times++
			return nil
		},
		Reseed: func(_ *agentclient.Client, _ context.Context, e []byte) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.reseeds++
			c.entropy = append([]byte(nil), e...)
			return nil
		},
	}
	t.Cleanup(func() { guestClock = old })
	return newHarness(t), c
}

func (h *harness) show(name string) api.VM {
	h.t.Helper()
	var v api.VM
	must(h.t, h.call(api.MethodVMShow, api.NameParams{Name: name}, &v))
	return v
}

func (h *harness) echo(name, what string) {
	h.t.Helper()
	out, st, err := h.exec(api.ExecParams{Name: name, ExecRequest: api.ExecRequest{Argv: []string{"echo", what}}})
	if err != nil || st.Code != 0 || out != what+"\n" {
		h.t.Fatalf("exec in %s: %q %+v %v", name, out, st, err)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestPauseResumeSetsClockAndIsIdempotent(t *testing.T) {
	h, clock := newSnapHarness(t)
	vm := h.create("dev")
	for i := 0; i < 2; i++ {
		var v api.VM
		must(t, h.call(api.MethodVMPause, api.NameParams{Name: "dev"}, &v))
		if v.State != store.StatePaused || !h.drv.Machine(vm.ID).Paused() {
			t.Fatalf("after pause %d: state %s, fake paused %v", i, v.State, h.drv.Machine(vm.ID).Paused())
		}
	}
	if err := h.call(api.MethodVMExec, api.ExecParams{Name: "dev", ExecRequest: api.ExecRequest{Argv: []string{"true"}}}, nil); err == nil || !strings.Contains(err.Error(), "vm resume") {
		t.Errorf("exec in a paused VM: %v", err)
	}
	if err := h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("start of a paused VM: %v", err)
	}
	for i := 1; i <= 2; i++ {
		var v api.VM
		must(t, h.call(api.MethodVMResume, api.NameParams{Name: "dev"}, &v))
		if v.State != store.StateRunning || h.drv.Machine(vm.ID).Paused() {
			t.Fatalf("after resume: %s", v.State)
		}
		if n, r := clock.counts(); n != i || r != 0 {
			t.Fatalf("after resume %d: %d settime, %d reseed", i, n, r)
		}
	}
	h.echo("dev", "awake")
	// a paused VM can be stopped: it is resumed to shut down
	must(t, h.call(api.MethodVMPause, api.NameParams{Name: "dev"}, nil))
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	if v := h.show("dev"); v.State != store.StateStopped || h.drv.Running() != 0 {
		t.Fatalf("stop of a paused VM: %s, %d running", v.State, h.drv.Running())
	}
	if err := h.call(api.MethodVMPause, api.NameParams{Name: "dev"}, nil); err == nil || !strings.Contains(err.Error(), "vm start") {
		t.Errorf("pause of a stopped VM: %v", err)
	}
}

func TestStopSaveThenStartContinues(t *testing.T) {
	h, clock := newSnapHarness(t)
	vm := h.create("dev")
	dir := filepath.Join(h.paths.VMDir(vm.ID), "saved")
	var v api.VM
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, &v))
	if v.State != store.StateSaved || h.drv.Running() != 0 || h.net.TAPCount() != 0 {
		t.Fatalf("after stop --save: state %s, %d running, taps %v", v.State, h.drv.Running(), h.net.TAPs)
	}
	if !exists(filepath.Join(dir, "meta.json")) || !exists(filepath.Join(dir, "state")) || exists(dir+".tmp") {
		t.Fatalf("saved state not complete in %s", dir)
	}
	if err := h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil); err == nil || !strings.Contains(err.Error(), "--cold") {
		t.Errorf("stop of a saved VM: %v", err)
	}
	must(t, h.call(api.MethodVMStart, api.StartParams{Name: "dev"}, &v))
	m := h.drv.Machine(vm.ID)
	if v.State != store.StateRunning || h.drv.Restores != 1 || m.RestoredFrom() != filepath.Join(dir, "state") || m.Paused() {
		t.Fatalf("start of saved: state %s, restores %d, from %q, paused %v", v.State, h.drv.Restores, m.RestoredFrom(), m.Paused())
	}
	if n, r := clock.counts(); n != 1 || r != 0 {
		t.Errorf("after continuing: %d settime, %d reseed", n, r)
	}
	if exists(dir) || exists(dir+".old") {
		t.Error("the saved state was kept after it was used")
	}
	h.echo("dev", "continued")
	// a second start is a cold one: nothing is saved any more
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, &v))
	if h.drv.Restores != 1 {
		t.Errorf("a plain stop/start restored: %d", h.drv.Restores)
	}
}

func TestStartOfSavedVMWithBadStateKeepsItAndOffersCold(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	dir := filepath.Join(h.paths.VMDir(vm.ID), "saved")
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil))
	// corrupt: the VMM's state is truncated
	st := filepath.Join(dir, "state", "fake-state.json")
	b, _ := os.ReadFile(st)
	must(t, os.WriteFile(st, b[:len(b)/3], 0o600))
	err := h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil)
	if err == nil || !strings.Contains(err.Error(), "vm start --cold dev") {
		t.Fatalf("start with a corrupt state: %v", err)
	}
	if v := h.show("dev"); v.State != store.StateSaved || !exists(st) || h.drv.Running() != 0 || h.net.TAPCount() != 0 {
		t.Fatalf("after a failed continue: %s, state kept %v, %d running, taps %v", v.State, exists(st), h.drv.Running(), h.net.TAPs)
	}
	// missing: meta.json gone
	must(t, os.Remove(filepath.Join(dir, "meta.json")))
	if err := h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil); err == nil || !strings.Contains(err.Error(), "--cold") {
		t.Fatalf("start with a missing state: %v", err)
	}
	var v api.VM
	must(t, h.call(api.MethodVMStart, api.StartParams{Name: "dev", Cold: true}, &v))
	if v.State != store.StateRunning || exists(dir) || h.drv.Restores != 1 {
		t.Fatalf("start --cold: %s, saved kept %v, restores %d", v.State, exists(dir), h.drv.Restores)
	}
}

func TestSnapshotOfStoppedVMIsRefused(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	err := h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "start it first") || !strings.Contains(err.Error(), "image promote") {
		t.Fatalf("snapshot of a stopped VM: %v", err)
	}
	if exists(filepath.Join(h.paths.VMDir(vm.ID), "snapshots", "s1.tmp")) || exists(filepath.Join(h.paths.VMDir(vm.ID), "snapshots", "s1")) {
		t.Error("a refused snapshot left files")
	}
}

func TestFullDiskDuringSaveKeepsVMRunningAndLeavesNothing(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	h.drv.SaveErr = syscall.ENOSPC
	for _, tc := range []struct {
		method string
		params any
	}{
		{api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "s1"}},
		{api.MethodVMStop, api.StopParams{Name: "dev", Save: true}},
	} {
		err := h.call(tc.method, tc.params, nil)
		if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "free on that filesystem") ||
			!strings.Contains(err.Error(), h.paths.VMDir(vm.ID)) {
			t.Fatalf("%s on a full disk: %v", tc.method, err)
		}
		if v := h.show("dev"); v.State != store.StateRunning || h.drv.Machine(vm.ID).Paused() || h.drv.Running() != 1 {
			t.Fatalf("after %s failed: %s, paused %v", tc.method, v.State, h.drv.Machine(vm.ID).Paused())
		}
		for _, p := range []string{"saved", "saved.tmp", "snapshots/s1", "snapshots/s1.tmp"} {
			if exists(filepath.Join(h.paths.VMDir(vm.ID), p)) {
				t.Errorf("after %s failed: %s left", tc.method, p)
			}
		}
		h.echo("dev", "still running")
	}
	var list []api.Snapshot
	must(t, h.call(api.MethodVMSnapshotList, api.NameParams{Name: "dev"}, &list))
	if len(list) != 0 {
		t.Errorf("snapshots after failures: %+v", list)
	}
}

func TestSnapshotCreateRestoreAndRemove(t *testing.T) {
	h, clock := newSnapHarness(t)
	vm := h.create("dev")
	work := filepath.Join(h.paths.VMDir(vm.ID), "work.ext4")
	f, err := os.OpenFile(work, os.O_WRONLY, 0)
	must(t, err)
	f.WriteAt([]byte("before"), 4096)
	f.Close()
	var sn api.Snapshot
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, &sn))
	if sn.Name != "s1" || sn.VMM != "fake" || sn.VMMVersion == "" || sn.BangerVersion == "" || sn.Bytes <= 0 || !strings.Contains(sn.Layout, "disks=base:ro,overlay,work,config:ro") {
		t.Fatalf("snapshot: %+v", sn)
	}
	if v := h.show("dev"); v.State != store.StateRunning || h.drv.Machine(vm.ID).Paused() || v.Snapshots != 1 || v.SnapshotBytes != sn.Bytes {
		t.Fatalf("after snapshot: %+v", v)
	}
	if n, _ := clock.counts(); n != 1 {
		t.Errorf("the clock was set %d times after the snapshot's resume", n)
	}
	for _, bad := range []api.SnapshotParams{{Name: "dev", Snapshot: "s1"}, {Name: "dev", Snapshot: "Bad_Name"}} {
		if err := h.call(api.MethodVMSnapshotCreate, bad, nil); err == nil {
			t.Errorf("snapshot %q accepted twice or badly named", bad.Snapshot)
		}
	}
	var auto api.Snapshot
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev"}, &auto))
	if _, err := time.Parse("20060102-150405", auto.Name); err != nil {
		t.Errorf("default name %q is not a timestamp", auto.Name)
	}
	f, _ = os.OpenFile(work, os.O_WRONLY, 0)
	f.WriteAt([]byte("after!"), 4096)
	f.Close()

	err = h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore of a running VM without --force: %v", err)
	}
	if err := h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s2"}, nil); err == nil || !strings.Contains(err.Error(), "no snapshot") {
		t.Fatalf("restore of a missing snapshot: %v", err)
	}
	var v api.VM
	must(t, h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s1", Force: true}, &v))
	m := h.drv.Machine(vm.ID)
	if v.State != store.StateRunning || m.RestoredFrom() != filepath.Join(h.paths.VMDir(vm.ID), "snapshots", "s1", "state") || m.Paused() {
		t.Fatalf("after restore: %s from %q", v.State, m.RestoredFrom())
	}
	b := make([]byte, 6)
	rf, _ := os.Open(work)
	rf.ReadAt(b, 4096)
	rf.Close()
	if string(b) != "before" {
		t.Errorf("work disk after restore holds %q, want the snapshot's %q", b, "before")
	}
	if _, r := clock.counts(); r != 1 || len(clock.entropy) != 64 || bytes.Equal(clock.entropy, make([]byte, 64)) {
		t.Errorf("reseed after restore: %d calls, entropy %x", r, clock.entropy)
	}
	h.echo("dev", "restored")
	// restorable again: the snapshot stays
	must(t, h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s1", Force: true}, nil))
	var list []api.Snapshot
	must(t, h.call(api.MethodVMSnapshotList, api.NameParams{Name: "dev"}, &list))
	if len(list) != 2 {
		t.Fatalf("list: %+v", list)
	}
	must(t, h.call(api.MethodVMSnapshotDelete, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, nil))
	if exists(filepath.Join(h.paths.VMDir(vm.ID), "snapshots", "s1")) {
		t.Error("rm left the snapshot's files")
	}
	if err := h.call(api.MethodVMSnapshotDelete, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, nil); err == nil {
		t.Error("rm of a removed snapshot succeeded")
	}
}

func TestSnapshotOfPausedVMStaysPaused(t *testing.T) {
	h, clock := newSnapHarness(t)
	vm := h.create("dev")
	must(t, h.call(api.MethodVMPause, api.NameParams{Name: "dev"}, nil))
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "p"}, nil))
	if v := h.show("dev"); v.State != store.StatePaused || !h.drv.Machine(vm.ID).Paused() {
		t.Fatalf("after snapshot of a paused VM: %s", v.State)
	}
	if n, _ := clock.counts(); n != 0 {
		t.Errorf("settime on a VM that stays paused: %d", n)
	}
}

func TestDeleteRemovesSnapshotsAndSavedState(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, nil))
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil))
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "dev"}, nil))
	h.assertNoTrace(vm.ID)
	st, err := store.Open(context.Background(), h.paths.Database())
	must(t, err)
	defer st.Close()
	if rows, _ := st.ListSnapshots(context.Background(), ""); len(rows) != 0 {
		t.Errorf("snapshot rows left: %+v", rows)
	}
}

// A daemon killed mid-save or mid-snapshot: half-written directories go,
// a live VMM left paused by the operation runs again, a VM paused by the
// user stays paused, a VM whose VMM also died is stopped (cold boot), a
// saved VM stays saved.
func TestReconcileAfterCrashMidSave(t *testing.T) {
	h, _ := newSnapHarness(t)
	live := h.create("live")
	held := h.create("held")
	dead := h.create("dead")
	h.create("kept")
	must(t, h.call(api.MethodVMPause, api.NameParams{Name: "held"}, nil))
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "kept", Save: true}, nil))
	h.stop()
	half := func(id string) {
		d := h.paths.VMDir(id)
		must(t, os.MkdirAll(filepath.Join(d, "saved.tmp", "state"), 0o700))
		must(t, os.MkdirAll(filepath.Join(d, "snapshots", "x.tmp", "state"), 0o700))
	}
	half(live.ID)
	half(dead.ID)
	h.drv.Machine(live.ID).Pause(context.Background()) // the save had paused it
	h.drv.Machine(dead.ID).Crash()
	h.start()
	states := map[string]string{}
	for _, n := range []string{"live", "held", "dead", "kept"} {
		states[n] = h.show(n).State
	}
	want := map[string]string{"live": store.StateRunning, "held": store.StatePaused, "dead": store.StateStopped, "kept": store.StateSaved}
	for n, s := range want {
		if states[n] != s {
			t.Errorf("%s is %s after reconcile, want %s", n, states[n], s)
		}
	}
	if h.drv.Machine(live.ID).Paused() || !h.drv.Machine(held.ID).Paused() {
		t.Error("reconcile: live must run again, held must stay paused")
	}
	for _, id := range []string{live.ID, dead.ID} {
		for _, p := range []string{"saved.tmp", "snapshots/x.tmp", "saved"} {
			if exists(filepath.Join(h.paths.VMDir(id), p)) {
				t.Errorf("reconcile left %s", p)
			}
		}
	}
	h.echo("live", "alive")
	restores := h.drv.Restores
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "dead"}, nil))
	if h.drv.Restores != restores {
		t.Error("the VM whose save never completed was restored, not booted cold")
	}
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "kept"}, nil))
	if h.drv.Restores != restores+1 {
		t.Error("the saved VM was not continued after a daemon restart")
	}
}
