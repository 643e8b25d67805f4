// Package fake is an in-process VMM driver for tests: each "machine" is a
// real banger agent server (running commands on the host) reached over an
// in-memory pipe, so the daemon's lifecycle logic is tested without QEMU.
package fake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/banger-dev/banger/internal/agent"
	"github.com/banger-dev/banger/internal/vmm"
)

// Driver records machines by VM id.
type Driver struct {
	mu       sync.Mutex
	machines map[string]*Machine
	nextPID  int
	// StartHook, when set, runs inside Start (block it to simulate a slow
	// boot, or return an error to fail it).
	StartHook func(ctx context.Context, spec vmm.Spec) error
	// NoAgent makes machines whose agent never answers.
	NoAgent bool
	// MuteStarts makes the next N machines' agents never answer (a
	// guest hung in early boot); later machines answer.
	MuteStarts int
	// KillErr, when set, makes Kill of the machines started from then on
	// fail and leave them running (a VMM stuck in the kernel).
	KillErr error
	// Starts counts Start calls (restores included).
	Starts int
	// Pauses, Resumes, SaveStates and Restores count Snapshotter calls
	// on any of this driver's machines and Starts from Spec.Restore
	// (successful or not); see snapshot.go.
	Pauses, Resumes, SaveStates, Restores int
	// SaveErr, when set, makes SaveState fail with it after writing a
	// partial state file (the caller removes the directory).
	SaveErr error
	// SaveHook runs inside SaveState after half the state file is
	// written, ResumeHook at the start of Resume, RestoredHook after Start
	// of a machine from Spec.Restore (the VMM has loaded the state). A
	// hook that Crashes the machine is a VMM killed (kill -9) at that
	// point: SaveState and Resume then fail as they would.
	SaveHook, ResumeHook, RestoredHook func(*Machine)
	// SharedRAM makes booted machines' RAM host-readable shared memory,
	// as QEMU's memfd is (memory.go: vmm.MemorySaver).
	SharedRAM bool
	last      vmm.Spec
	version   string
}

var _ vmm.Driver = (*Driver)(nil)

// New returns an empty fake driver.
func New() *Driver { return &Driver{machines: map[string]*Machine{}, nextPID: 4242} }

func (d *Driver) Name() string     { return "fake" }
func (d *Driver) Available() error { return nil }
func (d *Driver) Accel() string    { return "none (fake)" }

var _ vmm.Versioner = (*Driver)(nil)

// Version is the VMM version the fake runs: VMMVersion unless SetVersion
// changed it. SaveState records it; a restore compares it.
func (d *Driver) Version(context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.version == "" {
		return VMMVersion, nil
	}
	return d.version, nil
}

// SetVersion makes the fake run another VMM version from now on (a host
// whose QEMU was upgraded).
func (d *Driver) SetVersion(v string) {
	d.mu.Lock()
	d.version = v
	d.mu.Unlock()
}

// fakeMemory does what a VMM does with file-backed memory: a shared file
// is created, a private one must exist.
func fakeMemory(spec vmm.Spec) error {
	switch {
	case spec.Memory.File == "":
		return nil
	case spec.Memory.Shared:
		f, err := os.OpenFile(spec.Memory.File, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("fake: memory file: %w", err)
		}
		defer f.Close()
		return f.Truncate(int64(spec.MemoryMiB) << 20)
	}
	if _, err := os.Stat(spec.Memory.File); err != nil {
		return fmt.Errorf("fake: memory file: %w", err)
	}
	return nil
}

// Start creates a machine whose agent serves on demand.
func (d *Driver) Start(ctx context.Context, spec vmm.Spec) (vmm.Machine, error) {
	if d.StartHook != nil {
		if err := d.StartHook(ctx, spec); err != nil {
			return nil, err
		}
	}
	var restored *savedFile
	if spec.Restore != "" {
		d.mu.Lock()
		d.Restores++
		d.mu.Unlock()
		st, err := loadState(spec)
		if err != nil {
			return nil, err
		}
		restored = st
	}
	if err := fakeMemory(spec); err != nil {
		return nil, err
	}
	if spec.ConsoleLog != "" {
		os.WriteFile(spec.ConsoleLog, []byte("fake console line 1\nfake console line 2\n"), 0o600)
	}
	var m *Machine
	defer func() { // after the unlock below
		if m != nil && restored != nil && d.RestoredHook != nil {
			d.RestoredHook(m)
		}
	}()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Starts++
	d.last = spec
	d.nextPID++
	mute := d.NoAgent || d.MuteStarts > 0
	if d.MuteStarts > 0 {
		d.MuteStarts--
	}
	m = &Machine{spec: spec, done: make(chan struct{}), noAgent: mute, killErr: d.KillErr, drv: d,
		h: vmm.Handles{Driver: "fake", PID: d.nextPID, StartTicks: uint64(d.nextPID), StartedAt: time.Now()}}
	if restored != nil {
		// A restored machine starts paused, like a real VMM after
		// loading a saved state: the caller Resumes it.
		m.gate = make(chan struct{})
		m.restoredFrom = restored
	}
	m.srv = &agent.Server{PowerOff: func() { m.exit() }}
	// Like a VMM process, the machine keeps its inherited files (the
	// disks' flocks) until it exits.
	for _, f := range spec.Inherit {
		fd, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			m.closeHeld()
			return nil, fmt.Errorf("fake: inherit %s: %w", f.Name(), err)
		}
		syscall.CloseOnExec(fd)
		m.held = append(m.held, os.NewFile(uintptr(fd), f.Name()))
	}
	d.machines[spec.ID] = m
	return m, nil
}

// Attach finds a machine still "running" with the same PID.
func (d *Driver) Attach(h vmm.Handles) (vmm.Machine, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.machines {
		if m.h.PID == h.PID && !m.Exited() {
			return m, nil
		}
	}
	return nil, fmt.Errorf("fake pid %d is gone", h.PID)
}

// Machine returns the machine of a VM id.
func (d *Driver) Machine(id string) *Machine {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.machines[id]
}

// LastSpec is the spec of the most recent Start.
func (d *Driver) LastSpec() vmm.Spec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// Running counts machines that have not exited.
func (d *Driver) Running() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, m := range d.machines {
		if !m.Exited() {
			n++
		}
	}
	return n
}

// Machine is one fake VM.
type Machine struct {
	spec    vmm.Spec
	h       vmm.Handles
	srv     *agent.Server
	noAgent bool
	once    sync.Once
	done    chan struct{}
	held    []*os.File
	killErr error
	drv     *Driver

	// gate is nil while the vCPUs run; while paused it is an open
	// channel that Resume closes (snapshot.go).
	gmu          sync.Mutex
	gate         chan struct{}
	restoredFrom *savedFile
}

var _ vmm.Machine = (*Machine)(nil)

func (m *Machine) Handles() vmm.Handles  { return m.h }
func (m *Machine) Done() <-chan struct{} { return m.done }

// Spec is what the machine was started with.
func (m *Machine) Spec() vmm.Spec { return m.spec }

// Exited reports whether the machine has stopped.
func (m *Machine) Exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *Machine) exit() {
	m.once.Do(func() {
		m.closeHeld()
		close(m.done)
	})
}

func (m *Machine) closeHeld() {
	for _, f := range m.held {
		f.Close()
	}
	m.held = nil
}

// Diagnose describes the fake vCPU.
func (m *Machine) Diagnose(ctx context.Context) (string, error) {
	return "fake vcpu: halted\n", nil
}

// Crash simulates the VMM dying.
func (m *Machine) Crash() { m.exit() }

// DialAgent returns a pipe to a fresh agent session. On a paused machine
// it waits for Resume (or ctx, or the machine's exit), and the guest end
// of every session stalls while the machine is paused.
func (m *Machine) DialAgent(ctx context.Context) (net.Conn, error) {
	if m.Exited() {
		return nil, errors.New("fake machine exited")
	}
	if err := m.waitRunning(ctx); err != nil {
		return nil, err
	}
	host, pipeGuest := net.Pipe()
	guest := &gatedConn{Conn: pipeGuest, m: m}
	if m.noAgent {
		go func() {
			<-m.done
			guest.Close()
		}()
		return host, nil
	}
	sctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-m.done
		cancel()
	}()
	go m.srv.ServeConn(sctx, guest)
	return host, nil
}

func (m *Machine) Shutdown(ctx context.Context) error {
	m.exit()
	return nil
}

func (m *Machine) Kill() error {
	if m.killErr != nil {
		return m.killErr
	}
	m.exit()
	return nil
}
