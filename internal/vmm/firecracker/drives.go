package firecracker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/vmm"
)

// Firecracker's snapshot/load has no drive override: a restored microVM
// opens its disks at the paths they had when it was saved. With the
// jailer those are always /drives/<id> inside the chroot, staged per
// restore; without it they are the host paths. So an unjailed state is
// loadable only by a spec with the same disk paths — the same VM — and
// never by a fork child or a restore into other disks, which would
// silently write the parent's. SaveState records the paths (DrivesFile)
// and Start with Spec.Restore refuses a mismatch. (A machine re-attached
// after a daemon restart does not know its paths and records none; such
// a state is not checked.)

// DrivesFile is the saved disk paths beside StateFile and MemFile.
const DrivesFile = "drives.json"

// savedDrive is one disk of a saved microVM as it opened it.
type savedDrive struct {
	ID   string `json:"id"`
	Path string `json:"path"`
}

func drivesOf(spec vmm.Spec) []savedDrive {
	out := []savedDrive{}
	for _, d := range spec.Disks {
		out = append(out, savedDrive{d.ID, d.Path})
	}
	return out
}

func writeDrives(dir string, drives []savedDrive) error {
	if drives == nil {
		return nil
	}
	b, err := json.Marshal(drives)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, DrivesFile), b, 0o600)
}

// checkDrives refuses an unjailed restore whose disks are elsewhere than
// the saved microVM's.
func checkDrives(dir string, spec vmm.Spec) error {
	b, err := os.ReadFile(filepath.Join(dir, DrivesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var saved []savedDrive
	if err := json.Unmarshal(b, &saved); err != nil {
		return fmt.Errorf("restore: %s is corrupt: %w", DrivesFile, err)
	}
	want := drivesOf(spec)
	same := len(saved) == len(want)
	for i := 0; same && i < len(saved); i++ {
		same = saved[i] == want[i]
	}
	if !same {
		return fmt.Errorf("restore: the state was saved with its disks at %v and firecracker cannot load it with other disks (%v) without the jailer, whose chroot keeps every path the same: set [firecracker] jailer = true (with uid and gid) to fork or restore into other disks", saved, want)
	}
	return nil
}
