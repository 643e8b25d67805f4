package vmdir

import (
	"path/filepath"
	"testing"

	"github.com/banger-dev/banger/internal/config"
)

func TestSavedAndSnapshotPaths(t *testing.T) {
	d := For(config.Paths{StateDir: "/s", RuntimeDir: "/r"}, "id1")
	for got, want := range map[string]string{
		d.Saved(): "/s/vms/id1/saved", d.SavedTmp(): "/s/vms/id1/saved.tmp",
		d.Snapshot("a"): "/s/vms/id1/snapshots/a", d.SnapshotTmp("a"): "/s/vms/id1/snapshots/a.tmp",
		StateDir(d.Snapshot("a")): "/s/vms/id1/snapshots/a/state", Meta(d.Saved()): "/s/vms/id1/saved/meta.json",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	disks := SnapshotDisks("/x")
	for i, p := range d.Disks() {
		if filepath.Base(p) != filepath.Base(disks[i]) {
			t.Errorf("snapshot disk %d is %s, the VM's %s", i, disks[i], p)
		}
	}
	if !IsTmp("a.tmp") || IsTmp("a") || IsTmp("tmp") {
		t.Error("IsTmp")
	}
}
