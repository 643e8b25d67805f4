package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// A saved state written by another VMM version is refused before anything
// changes, with what to do; the same state starts once the version is
// back.
func TestStartOfSavedVMWrittenByAnotherVMMVersionIsRefused(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	dir := filepath.Join(h.paths.VMDir(vm.ID), "saved")
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil))
	h.drv.SetVersion("fake-2") // the host's VMM was upgraded
	err := h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil)
	for _, want := range []string{"written by fake fake-1", "runs fake fake-2", "boot it from its disks with `banger vm start --cold dev` (the processes it had are lost)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("start with another VMM version: %v (want %q)", err, want)
		}
	}
	if v := h.show("dev"); v.State != store.StateSaved || !exists(filepath.Join(dir, "meta.json")) || exists(dir+".old") ||
		h.drv.Restores != 0 || h.drv.Running() != 0 || h.net.TAPCount() != 0 {
		t.Fatalf("after the refusal: %s, saved kept %v, restores %d, %d running, taps %v",
			v.State, exists(dir), h.drv.Restores, h.drv.Running(), h.net.TAPs)
	}
	h.drv.SetVersion("fake-1")
	var v api.VM
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, &v))
	if v.State != store.StateRunning || h.drv.Restores != 1 {
		t.Fatalf("start with the right version: %s, restores %d", v.State, h.drv.Restores)
	}
	h.echo("dev", "continued")
}

// A saved state in another banger state format is refused the same way.
func TestStartOfSavedVMInAnotherStateFormatIsRefused(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	meta := filepath.Join(h.paths.VMDir(vm.ID), "saved", "meta.json")
	must(t, h.call(api.MethodVMStop, api.StopParams{Name: "dev", Save: true}, nil))
	var m map[string]any
	b, err := os.ReadFile(meta)
	must(t, err)
	must(t, json.Unmarshal(b, &m))
	if m["format"] != float64(1) {
		t.Fatalf("meta.json records format %v", m["format"])
	}
	m["format"] = 99
	b, _ = json.Marshal(m)
	must(t, os.WriteFile(meta, b, 0o600))
	err = h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil)
	if err == nil || !strings.Contains(err.Error(), "state format 99") || !strings.Contains(err.Error(), "vm start --cold dev") {
		t.Fatalf("start of a format-99 state: %v", err)
	}
	if v := h.show("dev"); v.State != store.StateSaved || !exists(meta) || h.drv.Restores != 0 || h.drv.Running() != 0 {
		t.Fatalf("after the refusal: %s, restores %d", v.State, h.drv.Restores)
	}
}

// A snapshot written by another VMM version is refused before the VM (even
// with --force) or its disks change.
func TestRestoreOfSnapshotWrittenByAnotherVMMVersionIsRefused(t *testing.T) {
	h, _ := newSnapHarness(t)
	vm := h.create("dev")
	must(t, h.call(api.MethodVMSnapshotCreate, api.SnapshotParams{Name: "dev", Snapshot: "s1"}, nil))
	work := filepath.Join(h.paths.VMDir(vm.ID), "work.ext4")
	f, err := os.OpenFile(work, os.O_WRONLY, 0)
	must(t, err)
	f.WriteAt([]byte("after!"), 4096)
	f.Close()
	before := h.drv.Machine(vm.ID)
	h.drv.SetVersion("fake-2")
	err = h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s1", Force: true}, nil)
	for _, want := range []string{"this snapshot can only be restored by fake fake-1", "`banger vm snapshot rm dev s1`"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("restore with another VMM version: %v (want %q)", err, want)
		}
	}
	b := make([]byte, 6)
	rf, _ := os.Open(work)
	rf.ReadAt(b, 4096)
	rf.Close()
	if v := h.show("dev"); v.State != store.StateRunning || h.drv.Machine(vm.ID) != before || before.Exited() ||
		h.drv.Restores != 0 || string(b) != "after!" {
		t.Fatalf("after the refusal: %s, same machine %v, restores %d, work %q", v.State, h.drv.Machine(vm.ID) == before, h.drv.Restores, b)
	}
	h.echo("dev", "untouched")
	h.drv.SetVersion("fake-1")
	must(t, h.call(api.MethodVMSnapshotRestore, api.SnapshotParams{Name: "dev", Snapshot: "s1", Force: true}, nil))
	if h.drv.Restores != 1 {
		t.Fatalf("restore with the right version: restores %d", h.drv.Restores)
	}
}
