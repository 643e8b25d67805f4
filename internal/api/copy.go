package api

// Files in and out of a running VM (vm cp) and its console log (vm logs).
// All three upgrade to a raw stream after the result line (a VM); the
// daemon relays bytes and never opens a path of the client's.
const (
	// MethodVMCopyIn: the client sends a tar archive followed by the
	// agent's copy trailer line and reads the agent's result line
	// (agent/proto copy_in with Into/Base).
	MethodVMCopyIn = "vm.cp.in"
	// MethodVMCopyOut: the client reads a tar archive followed by the
	// agent's trailer line (agent/proto copy_out).
	MethodVMCopyOut = "vm.cp.out"
	// MethodVMLogs: the client reads the console log's bytes until the
	// daemon closes the stream (at its end, or never when following).
	MethodVMLogs = "vm.logs"
)

// CopyInParams copies an archive to Path in the VM Name, as docker cp
// does: into Path when it is an existing directory, else as Path, whose
// parent must exist. Base is the archive's top-level name; empty means
// the archive's entries go into Path, which must be a directory.
type CopyInParams struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Base string `json:"base,omitempty"`
}

// CopyOutParams sends Path of the VM Name as an archive.
type CopyOutParams struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// LogsParams streams the console log of the VM Name: the last Tail lines
// (all when zero), then, with Follow, what is written later until the
// client leaves (a new boot's log is followed from its start).
type LogsParams struct {
	Name   string `json:"name"`
	Tail   int    `json:"tail,omitempty"`
	Follow bool   `json:"follow,omitempty"`
}
