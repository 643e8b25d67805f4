package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// What the other lifecycle commands do with a paused or saved VM.
func TestOtherCommandsOnPausedAndSavedVMs(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	must(t, h.call(api.MethodVMPause, api.NameParams{Name: "dev"}, nil))
	for _, m := range []string{api.MethodVMStats, api.MethodVMPorts} {
		if err := h.call(m, api.NameParams{Name: "dev"}, nil); err == nil || !strings.Contains(err.Error(), "vm resume") {
			t.Errorf("%s of a paused VM: %v", m, err)
		}
	}
	// a paused VM saves (and its saved state continues it)
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil))
	if err := h.call(api.MethodVMSet, api.SetParams{Name: "dev", VCPU: 2}, nil); err == nil || !strings.Contains(err.Error(), "--cold") {
		t.Errorf("set of a saved VM: %v", err)
	}
	if err := h.call(api.MethodVMResume, api.NameParams{Name: "dev"}, nil); err == nil || !strings.Contains(err.Error(), "vm start") {
		t.Errorf("resume of a saved VM: %v", err)
	}
	if err := h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev"}, nil); err == nil || !strings.Contains(err.Error(), "start it first") {
		t.Errorf("snapshot of a saved VM: %v", err)
	}
	// restart boots afresh and drops the saved state
	var v api.VM
	must(t, h.call(api.MethodVMRestart, api.NameParams{Name: "dev"}, &v))
	if v.State != store.StateRunning || h.drv.Restores != 0 {
		t.Errorf("restart of a saved VM: %s, %d restores", v.State, h.drv.Restores)
	}
	if _, err := os.Stat(filepath.Join(h.paths.VMDir(vm.ID), "saved")); err == nil {
		t.Error("restart kept the saved state")
	}
	// a saved VM restores a snapshot only with --force
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "s"}, nil))
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil))
	if err := h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s"}, nil); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("restore into a saved VM without --force: %v", err)
	}
	must(t, h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s", Force: true}, &v))
	if _, err := os.Stat(filepath.Join(h.paths.VMDir(vm.ID), "saved")); v.State != store.StateRunning || err == nil {
		t.Errorf("restore --force of a saved VM: %s, saved state kept %v", v.State, err == nil)
	}
}

// A snapshot of another machine shape (vm set since) is refused before
// anything changes, saying what to do.
func TestRestoreOfAnotherLayoutIsRefused(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "small"}, nil))
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	must(t, h.call(api.MethodVMSet, api.SetParams{Name: "dev", VCPU: 2}, nil))
	work := filepath.Join(h.paths.VMDir(vm.ID), "work.ext4")
	f, err := os.OpenFile(work, os.O_WRONLY, 0)
	must(t, err)
	f.WriteAt([]byte("since"), 4096)
	f.Close()
	err = h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "small", Force: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "vcpu=1") || !strings.Contains(err.Error(), "vcpu=2") || !strings.Contains(err.Error(), "vm snapshot rm dev small") {
		t.Fatalf("restore into another layout: %v", err)
	}
	b := make([]byte, 5)
	rf, err := os.Open(work)
	must(t, err)
	rf.ReadAt(b, 4096)
	rf.Close()
	if v := h.show("dev"); v.State != store.StateStopped || string(b) != "since" || h.drv.Restores != 0 {
		t.Errorf("a refused restore changed the VM: %s, disk holds %q, restores %d", v.State, b, h.drv.Restores)
	}
}
