package vmdir

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Saved states and snapshots (issue 13). Both are directories in the
// VM's persistent directory, written under a ".tmp" name and renamed
// when complete: the rename is the completion marker, so a directory
// still named *.tmp is a half-written one that reconcile removes.
//
//	saved/             vm stop --save: state/ (the VMM's files), meta.json
//	snapshots/<name>/  vm snapshot create: state/, overlay.ext4, work.ext4, meta.json
const (
	savedDir    = "saved"
	snapsDir    = "snapshots"
	stateSub    = "state"
	metaFile    = "meta.json"
	tmpSuffix   = ".tmp"
	oldSuffix   = ".old"
	snapOverlay = overlayFile
	snapWork    = workFile
)

// Saved is the VM's saved state (`vm stop --save`), used once by the
// next `vm start`.
func (d Dir) Saved() string { return filepath.Join(d.state, savedDir) }

// SavedTmp is where a save is written before it is complete.
func (d Dir) SavedTmp() string { return d.Saved() + tmpSuffix }

// Snapshots is the directory of the VM's snapshots.
func (d Dir) Snapshots() string { return filepath.Join(d.state, snapsDir) }

// Snapshot is one complete snapshot's directory.
func (d Dir) Snapshot(name string) string { return filepath.Join(d.Snapshots(), name) }

// SnapshotTmp is where a snapshot is written before it is complete.
func (d Dir) SnapshotTmp(name string) string { return d.Snapshot(name) + tmpSuffix }

// IsTmp says whether a saved-state or snapshot directory name is a
// half-written one.
func IsTmp(name string) bool {
	return strings.HasSuffix(name, tmpSuffix) || strings.HasSuffix(name, oldSuffix)
}

// StateDir is the VMM's files inside a saved state or snapshot
// directory (vmm.Spec.Restore, vmm.Snapshotter.SaveState's dir).
func StateDir(dir string) string { return filepath.Join(dir, stateSub) }

// Meta is the metadata file inside a saved state or snapshot directory.
func Meta(dir string) string { return filepath.Join(dir, metaFile) }

// SnapshotDisks are a snapshot directory's copies of the VM's writable
// disks, in the order of Dir.Disks.
func SnapshotDisks(dir string) []string {
	return []string{filepath.Join(dir, snapOverlay), filepath.Join(dir, snapWork)}
}

// SavedUsed is where a saved state is moved once a VMM has loaded it and
// before the VM continues: a saved state is used once (the disks move
// on), and reconcile removes a leftover one (IsTmp).
func (d Dir) SavedUsed() string { return d.Saved() + oldSuffix }

// Allocated is the space a file tree takes on disk: its allocated blocks,
// so sparse disk copies count for what they hold (snapshot sizes, doctor).
func Allocated(root string) int64 {
	var n int64
	filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
