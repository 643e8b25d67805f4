package api

import "time"

// Pause, save and snapshots (issue 13).
const (
	MethodVMPause           = "vm.pause"
	MethodVMResume          = "vm.resume"
	MethodVMSnapshotCreate  = "vm.snapshot.create"
	MethodVMSnapshotList    = "vm.snapshot.list"
	MethodVMSnapshotRestore = "vm.snapshot.restore"
	MethodVMSnapshotDelete  = "vm.snapshot.delete"
)

// StopParams are vm.stop's; Save keeps the VM's whole state on disk
// (state "saved") so that the next vm.start continues it.
type StopParams struct {
	Name string `json:"name"`
	Save bool   `json:"save,omitempty"`
}

// StartParams are vm.start's; Cold boots a saved VM from its disks,
// discarding its saved state.
type StartParams struct {
	Name string `json:"name"`
	Cold bool   `json:"cold,omitempty"`
}

// SnapshotParams name one snapshot of one VM. For create, an empty
// Snapshot is a name from the time; for restore, Force stops a running
// VM first.
type SnapshotParams struct {
	Name     string `json:"name"`
	Snapshot string `json:"snapshot,omitempty"`
	Force    bool   `json:"force,omitempty"`
}

// Snapshot is one snapshot of a VM as `vm snapshot ls` shows it.
type Snapshot struct {
	VM            string    `json:"vm"`
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"created_at"`
	Bytes         int64     `json:"bytes"` // allocated on disk
	VMM           string    `json:"vmm"`
	VMMVersion    string    `json:"vmm_version"`
	BangerVersion string    `json:"banger_version"`
	// Layout is the machine's shape a restore needs (vCPUs, memory,
	// devices).
	Layout string `json:"layout"`
}
