package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm/fake"
)

// The VMM killed (kill -9) in the middle of a save or a restore: nothing
// half-made is left, the VM ends stopped (or saved, while a complete
// saved state remains) and `vm start` then works.

// leftovers lists what an interrupted save or restore could leave in a
// VM's directory.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(p, ".tmp") || strings.HasSuffix(p, ".old") || strings.HasSuffix(p, ".restore")) {
			left = append(left, p)
		}
		return nil
	})
	return left
}

func crash(m *fake.Machine) { m.Crash() }

// crashRestored kills only a machine started from a saved state.
func crashRestored(m *fake.Machine) {
	if m.RestoredFrom() != "" {
		m.Crash()
	}
}

// (h *harness) stoppedAndStartable checks the VM is stopped with nothing
// running for it, then starts it from its disks.
func (h *harness) stoppedAndStartable(id, name string) {
	h.t.Helper()
	if v := h.show(name); v.State != store.StateStopped || h.drv.Running() != 0 || h.net.TAPCount() != 0 {
		h.t.Fatalf("after the VMM died: state %s, %d running, taps %v", v.State, h.drv.Running(), h.net.TAPs)
	}
	if left := leftovers(h.t, h.paths.VMDir(id)); len(left) != 0 {
		h.t.Fatalf("left behind: %v", left)
	}
	restores := h.drv.Restores
	var v api.VM
	must(h.t, h.call(api.MethodVMStart, api.NameParams{Name: name}, &v))
	if v.State != store.StateRunning || h.drv.Restores != restores {
		h.t.Fatalf("vm start after the VMM died: %s, restores %d→%d", v.State, restores, h.drv.Restores)
	}
	h.echo(name, "alive")
}

func TestVMMKilledDuringStopSave(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	h.drv.SaveHook = crash
	err := h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "exited during it") || !strings.Contains(err.Error(), "`banger vm start dev`") ||
		strings.Contains(err.Error(), "vm resume") {
		t.Fatalf("stop --save with the VMM killed mid-save: %v", err)
	}
	h.drv.SaveHook = nil
	if exists(filepath.Join(h.paths.VMDir(vm.ID), "saved")) {
		t.Fatal("a saved state was left")
	}
	h.stoppedAndStartable(vm.ID, "dev")
}

func TestVMMKilledDuringSnapshotCreate(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	h.drv.SaveHook = crash
	err := h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "nothing was kept") || !strings.Contains(err.Error(), "`banger vm start dev`") {
		t.Fatalf("snapshot with the VMM killed mid-save: %v", err)
	}
	h.drv.SaveHook = nil
	var list []api.Snapshot
	must(t, h.call(api.MethodVMSnapshotList, api.NameParams{Name: "dev"}, &list))
	if ents, _ := os.ReadDir(filepath.Join(h.paths.VMDir(vm.ID), "snapshots")); len(ents) != 0 || len(list) != 0 {
		t.Fatalf("left: files %v, rows %+v", ents, list)
	}
	h.stoppedAndStartable(vm.ID, "dev")
}

// Killed after loading the saved state, before the VM continued: the
// guest never ran, so the state stays and a later start continues it.
func TestVMMKilledAfterLoadingSavedStateKeepsItSaved(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	saved := filepath.Join(h.paths.VMDir(vm.ID), "saved")
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil))
	h.drv.RestoredHook = crash
	err := h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil)
	if err == nil || !strings.Contains(err.Error(), "exited after loading") || !strings.Contains(err.Error(), "vm start --cold dev") {
		t.Fatalf("start with the VMM killed after loading: %v", err)
	}
	h.drv.RestoredHook = nil
	if v := h.show("dev"); v.State != store.StateSaved || !exists(filepath.Join(saved, "meta.json")) || h.drv.Running() != 0 || h.net.TAPCount() != 0 {
		t.Fatalf("after the VMM died: %s, saved kept %v, %d running, taps %v", v.State, exists(saved), h.drv.Running(), h.net.TAPs)
	}
	if left := leftovers(t, h.paths.VMDir(vm.ID)); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	var v api.VM
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, &v))
	if v.State != store.StateRunning || h.drv.Restores != 2 || exists(saved) {
		t.Fatalf("second start: %s, restores %d, saved kept %v", v.State, h.drv.Restores, exists(saved))
	}
	h.echo("dev", "continued")
}

// Killed as the VM was being continued: the state may have been run from,
// so it is spent; the VM is stopped and boots from its disks.
func TestVMMKilledAtResumeOfSavedState(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil))
	h.drv.ResumeHook = crashRestored
	err := h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil)
	if err == nil || !strings.Contains(err.Error(), "exited during it") || !strings.Contains(err.Error(), "`banger vm start dev`") {
		t.Fatalf("start with the VMM killed at resume: %v", err)
	}
	h.drv.ResumeHook = nil
	if exists(filepath.Join(h.paths.VMDir(vm.ID), "saved")) {
		t.Fatal("the used saved state was kept")
	}
	h.stoppedAndStartable(vm.ID, "dev")
}

func TestVMMKilledDuringSnapshotRestore(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, nil))
	h.drv.ResumeHook = crashRestored
	err := h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s1", Force: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "exited during it") || !strings.Contains(err.Error(), "vm start dev") {
		t.Fatalf("restore with the VMM killed at resume: %v", err)
	}
	h.drv.ResumeHook = nil
	if !exists(filepath.Join(h.paths.VMDir(vm.ID), "snapshots", "s1", "meta.json")) {
		t.Fatal("the snapshot was lost")
	}
	h.stoppedAndStartable(vm.ID, "dev")
	restores := h.drv.Restores
	must(t, h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s1", Force: true}, nil))
	if h.drv.Restores != restores+1 {
		t.Fatal("the snapshot was not restorable again")
	}
	h.echo("dev", "restored")
}
