// Package vmm defines the interface every virtual machine monitor driver
// (qemu, firecracker, fake) implements. The daemon talks only to this
// interface; drivers own their processes, sockets and command lines.
package vmm

import (
	"context"
	"errors"
	"net"
	"os"
	"time"
)

// ErrNotSupported is returned by a driver for an optional ability it lacks.
var ErrNotSupported = errors.New("not supported by this vmm driver")

// Disk is one block device handed to the guest. Order matters only for
// drivers that need a root drive first; the guest agent finds disks by
// content (ext4 UUID or the config-drive magic), never by order.
type Disk struct {
	ID       string // short identifier, [A-Za-z0-9_] only (firecracker drive_id)
	Path     string
	ReadOnly bool
}

// NetIface attaches the guest's single NIC to a host TAP device.
type NetIface struct {
	TAP string
	MAC string
}

// Spec is everything a driver needs to start one VM.
type Spec struct {
	ID        string // VM id, stable for the VM's lifetime
	Name      string
	Dir       string // per-VM runtime directory: sockets, logs, handles
	VCPU      int
	MemoryMiB int
	// Kernel is the boot image: a bzImage or an ELF vmlinux (qemu takes
	// either); KernelELF, when set, is an ELF vmlinux of the same kernel
	// (firecracker needs ELF).
	Kernel    string
	KernelELF string
	Initrd    string
	// Cmdline carries banger's kernel arguments; drivers append their own
	// (console, clock hints).
	Cmdline    string
	Disks      []Disk
	Net        *NetIface
	ConsoleLog string // file that receives the guest serial console
	// Inherit are open files the VMM process must inherit and keep for
	// its lifetime: the flocks on the VM's writable disks (LockDisks).
	// Drivers pass them as extra file descriptors (fd 3 on); the caller
	// closes its own copies after Start.
	Inherit []*os.File
	// Restore, when set, is a directory written by Snapshotter.SaveState:
	// the driver starts the VMM from that state, paused, instead of
	// booting the kernel, and the caller reconnects to the agent and calls
	// Resume. The rest of the Spec must describe the same machine (vCPUs,
	// memory, the same disks in the same order, a NIC or none); disk
	// paths, the TAP, the MAC and sockets may differ. A driver without
	// snapshots returns ErrNotSupported.
	Restore string
	// Memory says where the guest's RAM comes from; the zero value is
	// anonymous memory, private to the VMM.
	Memory MemorySpec
}

// MemorySpec backs the guest's RAM with a file (warm starts).
//
// Shared = true maps File shared: the guest writes into the file, and a
// SaveState of such a machine leaves the memory out of the saved state
// (the file IS the memory; the machine must never run again after the
// save). Shared = false maps File privately (copy-on-write): the guest
// reads the file's pages, shared with every other private mapping of it
// in the page cache, and its writes stay its own. A restore from a
// state saved with shared memory needs File = that machine's file.
type MemorySpec struct {
	File   string
	Shared bool
}

// Handles are the transient facts about a running VM. They are written to
// the VM's handles.json so that a restarted daemon can re-attach.
type Handles struct {
	Driver      string    `json:"driver"`
	PID         int       `json:"pid"`
	StartTicks  uint64    `json:"start_ticks"`  // /proc/PID/stat starttime, guards against PID reuse
	ControlSock string    `json:"control_sock"` // QMP or Firecracker API socket
	AgentSock   string    `json:"agent_sock"`   // unix socket that reaches the guest agent
	ConsoleLog  string    `json:"console_log"`
	TAP         string    `json:"tap,omitempty"`
	StartedAt   time.Time `json:"started_at"`
}

// Diagnoser is implemented by machines that can describe their vCPUs'
// state (for example a register dump) when a guest stops making progress.
type Diagnoser interface {
	Diagnose(ctx context.Context) (string, error)
}

// Snapshotter is implemented by machines whose vCPUs can be stopped and
// continued and whose whole state can be written to files: `vm pause`,
// `vm stop --save`, `vm snapshot`.
type Snapshotter interface {
	// Pause stops the vCPUs; memory, devices and the agent channel stay.
	// Pausing a paused machine is not an error.
	Pause(ctx context.Context) error
	// Resume continues paused vCPUs (also those of a machine started from
	// Spec.Restore). Resuming a running machine is not an error.
	Resume(ctx context.Context) error
	// SaveState writes the paused machine's device state and guest memory
	// into dir, which exists and is empty. The machine stays paused. The
	// files are complete only when it returns nil; on error the caller
	// removes dir.
	SaveState(ctx context.Context, dir string) (SavedState, error)
}

// MemorySaver is implemented by machines whose RAM is shared memory the
// host can read (qemu: a memfd): a fork's instant then saves only the
// device state and copies the RAM's allocated pages into a file, which
// the children map privately (copy-on-write), with no second VMM to load
// the memory into a file first.
type MemorySaver interface {
	// SharesMemory reports whether SaveStateWithMemory can be used: the
	// machine's RAM is shared memory the host reaches.
	SharesMemory() bool
	// SaveStateWithMemory writes the paused machine's device state without
	// its memory into dir (which exists and is empty) and its memory into
	// mem (an empty file open for writing; it becomes a sparse file of the
	// guest's memory size holding the allocated pages). A restore of dir
	// needs Spec.Memory = {File: a path of mem} mapped privately. The
	// machine stays paused and may run again: its memory is not mem.
	SaveStateWithMemory(ctx context.Context, dir string, mem *os.File) (SavedState, error)
}

// Versioner is implemented by drivers that can say which VMM version
// they run: a saved state loads only into the VMM version that wrote it,
// so a restore compares it with SavedState.VMMVersion before it starts
// anything, and warm-start templates are keyed by it. The string has the
// form SavedState.VMMVersion has for the driver.
type Versioner interface {
	Version(ctx context.Context) (string, error)
}

// SavedState describes what SaveState wrote; a restore needs the same
// driver and VMM version.
type SavedState struct {
	Driver     string `json:"driver"`
	VMMVersion string `json:"vmm_version"`
	Bytes      int64  `json:"bytes"` // allocated on disk
}

// Driver starts machines and re-attaches to running ones.
type Driver interface {
	Name() string
	// Available reports why this driver cannot run VMs on this host, or nil.
	Available() error
	// Accel describes the acceleration in use ("kvm", "tcg") and why.
	Accel() string
	// Start launches the VMM process and returns once it is running. The
	// process must not be tied to ctx: ctx bounds only the start-up calls.
	Start(ctx context.Context, spec Spec) (Machine, error)
	// Attach rebuilds a Machine for a VMM process started by an earlier
	// daemon. It fails when the process is gone.
	Attach(h Handles) (Machine, error)
}

// Machine is one running VMM process.
type Machine interface {
	Handles() Handles
	// DialAgent opens a raw byte stream to the guest agent's channel.
	DialAgent(ctx context.Context) (net.Conn, error)
	// Done is closed when the VMM process has exited.
	Done() <-chan struct{}
	// Shutdown asks the VMM to stop the guest (ACPI power button,
	// Ctrl-Alt-Del); callers prefer the agent's shutdown first.
	Shutdown(ctx context.Context) error
	// Kill ends the VMM process at once. Idempotent.
	Kill() error
}
