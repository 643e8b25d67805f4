package api

// Forks (issue 14): running copies of a VM as of one instant.

// MethodVMFork forks a VM (vm fork).
const MethodVMFork = "vm.fork"

// MaxForkCount is the most children one fork makes (memory, disk and
// free addresses are checked too, before anything is made).
const MaxForkCount = 16

// ForkParams ask for Count copies of VM Name. With Count 1, As is the
// child's name; with more, the children are As-1 … As-N. An empty As is
// Name + "-fork". From forks one of the VM's snapshots instead of its
// running state (the VM may then be in any state).
type ForkParams struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	As    string `json:"as,omitempty"`
	From  string `json:"from,omitempty"`
}

// ForkResult is what a fork made.
type ForkResult struct {
	Parent   string `json:"parent"`
	Snapshot string `json:"snapshot,omitempty"` // From, when forked from one
	// PausedMillis is how long the parent's vCPUs were stopped for the
	// copy (0 when it was already paused, or for a snapshot).
	PausedMillis int64 `json:"paused_ms"`
	Children     []VM  `json:"children"`
}
