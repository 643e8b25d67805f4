// Package api holds the wire types of the CLI ↔ daemon protocol: method
// names, params and results, error codes and the protocol version. It has
// no behaviour beyond building its errors (Invalidf, Conflictf, NotFoundf).
package api

import (
	"fmt"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// Version is the protocol version; the daemon refuses other versions.
const Version = 2 // 2: host files travel as request/response bodies (workspace archive; image register/export, kernel import)

// Methods.
const (
	MethodStatus       = "daemon.status"
	MethodShutdown     = "daemon.shutdown"
	MethodVMCreate     = "vm.create"
	MethodVMRun        = "vm.run" // create (or reuse), then an exec stream
	MethodVMList       = "vm.list"
	MethodVMShow       = "vm.show"
	MethodVMStart      = "vm.start"
	MethodVMStop       = "vm.stop"
	MethodVMDelete     = "vm.delete"
	MethodVMSSH        = "vm.ssh" // how to reach a VM with OpenSSH
	MethodImageBuild   = "image.build"
	MethodImageList    = "image.list"
	MethodKernelImport = "kernel.import"
	MethodKernelList   = "kernel.list"
)

// Error codes.
const (
	CodeInvalid  = "invalid"   // bad input; nothing changed
	CodeNotFound = "not_found" // no such VM, image or kernel
	CodeConflict = "conflict"  // name taken, wrong state
	CodeVersion  = "version"   // protocol version mismatch
	CodeInternal = "internal"
	CodeBusy     = "busy" // the daemon's connection bound is reached; try again
)

// Error is a failed call.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf is an *Error with code and a formatted message.
func Errorf(code, format string, a ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// Invalidf is a CodeInvalid error: bad input, nothing changed.
func Invalidf(format string, a ...any) error { return Errorf(CodeInvalid, format, a...) }

// Conflictf is a CodeConflict error: name taken, wrong state.
func Conflictf(format string, a ...any) error { return Errorf(CodeConflict, format, a...) }

// NotFoundf is a CodeNotFound error.
func NotFoundf(format string, a ...any) error { return Errorf(CodeNotFound, format, a...) }

// Request is the first line a client sends.
type Request struct {
	V      int    `json:"v"`
	Method string `json:"method"`
	Params any    `json:"params,omitempty"`
}

// Progress is one stage of a long operation.
type Progress struct {
	Stage   string  `json:"stage"`
	Message string  `json:"message,omitempty"`
	Elapsed float64 `json:"elapsed"` // seconds since the operation started
	// Counting stages (StageDownload, …) also say how far they are: Done
	// of Total (0: unknown) in Unit ("bytes"). Unit is empty on every
	// other event, including the line that closes a counting stage.
	Done  int64  `json:"done,omitempty"`
	Total int64  `json:"total,omitempty"`
	Unit  string `json:"unit,omitempty"`
}

// UnitBytes is Progress.Unit for byte counts.
const UnitBytes = "bytes"

// Status describes the daemon.
type Status struct {
	// Interrupted lists the exec streams a daemon.shutdown ends (its
	// result only), e.g. "vm exec dev -- make (client pid 42)".
	Interrupted []string `json:"interrupted,omitempty"`

	PID        int    `json:"pid"`
	Version    string `json:"version"`
	APIVersion int    `json:"api_version"`
	Socket     string `json:"socket"`    // on the daemon's machine
	StateDir   string `json:"state_dir"` // on the daemon's machine
	VMM        string `json:"vmm"`
	VMMReason  string `json:"vmm_reason"`
	Accel      string `json:"accel"`
	Running    int    `json:"running_vms"`
	// AgentVersion is the version of the banger-agent the daemon puts in
	// guests' initramfs ("" when it has none).
	AgentVersion string `json:"agent_version,omitempty"`
}

// CreateParams creates a VM. Zero sizes mean "resolve a default".
type CreateParams struct {
	Name      string `json:"name,omitempty"`
	Image     string `json:"image,omitempty"`
	VCPU      int    `json:"vcpu,omitempty"`
	MemoryMiB int    `json:"memory_mib,omitempty"`
	DiskSize  string `json:"disk_size,omitempty"`
	VMM       string `json:"vmm,omitempty"` // "" = the daemon's default
	// WaitSSH makes create wait until sshd answers (vm create does; vm run
	// execs through the agent and need not).
	WaitSSH bool `json:"wait_ssh,omitempty"`
	// NoWait returns as soon as the VM is reserved; the daemon finishes
	// the create in the background.
	NoWait bool `json:"no_wait,omitempty"`
	// Cold boots the kernel even when a start-up snapshot could start
	// the VM warm ([snapshots] warm).
	Cold bool `json:"cold,omitempty"`
	// Net is the VM's network policy (netpolicy.go); nil: [network]
	// default_policy. An empty Mode in it means the default mode.
	Net *NetPolicy `json:"net,omitempty"`
	// Ports are the VM's forwards (-p, --auto-forward; netpolicy.go).
	Ports *CreatePorts `json:"ports,omitempty"`
}

// RunParams creates a VM and runs a command in it.
type RunParams struct {
	Create CreateParams `json:"create"`
	// ExecRequest is the command (argv, env, dir, tty, user), the same
	// type from the CLI through the daemon to the guest agent; its JSON
	// fields sit at the top level of the params. The daemon decides
	// MakeDir. User defaults to the image's, else root; TTY runs the
	// command on a pseudo-terminal of that size (vm run -t).
	ExecRequest
	Remove bool `json:"rm,omitempty"`
	// Workspace, when set, is imported before the command runs; the
	// command runs in it unless Dir says otherwise.
	Workspace *WorkspaceSpec `json:"workspace,omitempty"`
}

// ExecRequest is a command run in a guest (vm run, vm exec, workspace
// export): the agent protocol's own request, so no layer copies it field
// by field.
type ExecRequest = proto.ExecRequest

// WinSize is a terminal's size in characters (proto.WinSize).
type WinSize = proto.WinSize

// NameParams names one VM (exact name, id, or unique prefix).
type NameParams struct {
	Name string `json:"name"`
}

// VM is a VM as shown to users.
type VM struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Image     string    `json:"image"`
	Kernel    string    `json:"kernel"`
	VMM       string    `json:"vmm"`
	VCPU      int       `json:"vcpu"`
	MemoryMiB int       `json:"memory_mib"`
	DiskBytes int64     `json:"disk_bytes"`
	IP        string    `json:"ip"`
	MAC       string    `json:"mac"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	PID       int       `json:"pid,omitempty"` // the VMM's, on the daemon's machine
	// ConsoleLog and Dir are paths on the daemon's machine, for people and
	// tools there; a remote client reads the log with vm.logs.
	ConsoleLog string `json:"console_log"`
	Dir        string `json:"dir"`
	// Snapshots and SnapshotBytes are the VM's snapshots (issue 13).
	Snapshots     int   `json:"snapshots,omitempty"`
	SnapshotBytes int64 `json:"snapshot_bytes,omitempty"`
	// StartedFrom says how the running VM started: "boot" (the kernel
	// booted) or "snapshot KEY" (a warm start from the start-up snapshot
	// whose key begins with KEY); empty when not running.
	StartedFrom string `json:"started_from,omitempty"`
	// Net is the VM's network policy (issue 16).
	Net *NetPolicy `json:"net,omitempty"`
}

// SpecLine is sent as the first progress event of a create: the resolved
// sizes, printed by the CLI as "spec: ...".
const StageSpec = "spec"

// SSHInfo is what the CLI needs to run OpenSSH against a VM.
type SSHInfo struct {
	VM             VM     `json:"vm"`
	User           string `json:"user"`
	Host           string `json:"host"`
	HostKeyAlias   string `json:"host_key_alias"`
	IdentityFile   string `json:"identity_file"`
	KnownHostsFile string `json:"known_hosts_file"`
}

// BuildImageParams builds the golden image.
type BuildImageParams struct {
	Name  string `json:"name,omitempty"`
	Force bool   `json:"force,omitempty"`
}

// Image as shown to users.
type Image struct {
	Name string `json:"name"`
	// Path is the image file on the daemon's machine, for people and
	// tools beside the daemon: a client must not expect to open it (files
	// travel through image register / export).
	Path      string    `json:"path"`
	SizeBytes int64     `json:"size_bytes"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// ImportKernelParams imports a distro kernel package.
type ImportKernelParams struct {
	Name    string `json:"name,omitempty"`
	Package string `json:"package,omitempty"` // apt package, default the cloud kernel
	// DebFile is the client's name for a .deb to import, whose bytes are
	// the call's request body (Size of them; 0: unknown); the daemon does
	// not open it. The import cache is keyed by its base name.
	DebFile string `json:"deb_file,omitempty"`
	Size    int64  `json:"size,omitempty"`
}

// Kernel as shown to users.
type Kernel struct {
	Name    string `json:"name"`
	Release string `json:"release"`
	// Dir is the kernel's directory on the daemon's machine (as
	// Image.Path: not for a client to open).
	Dir       string    `json:"dir"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}
