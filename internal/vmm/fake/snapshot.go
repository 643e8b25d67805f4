package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// The fake machine's Snapshotter. Pause closes no connection: it makes the
// agent channel stall (DialAgent waits, and reads and writes on the guest
// end of open sessions wait) until Resume, as stopped vCPUs would.
// SaveState writes StateFile into the directory; Start with Spec.Restore
// reads it back, checks the Spec describes the same machine and returns a
// machine that is paused until Resume. The driver counts every call
// (Driver.Pauses, Resumes, SaveStates, Restores).

var _ vmm.Snapshotter = (*Machine)(nil)

// StateFile is the file SaveState writes into its directory.
const StateFile = "fake-state.json"

// VMMVersion is the version the fake reports (Driver.Version) and records
// in SavedState unless Driver.SetVersion changed it.
const VMMVersion = "fake-1"

const stateFormat = "banger-fake-state/1"

// savedFile is StateFile's content: enough to check that a restore's Spec
// describes the same machine (what a real VMM insists on).
type savedFile struct {
	Format    string    `json:"format"`
	VMID      string    `json:"vm_id"`
	VCPU      int       `json:"vcpu"`
	MemoryMiB int       `json:"memory_mib"`
	Disks     []string  `json:"disks"` // ids, in order
	Net       bool      `json:"net"`
	SavedAt   time.Time `json:"saved_at"`
}

func stateOf(spec vmm.Spec) savedFile {
	f := savedFile{Format: stateFormat, VMID: spec.ID, VCPU: spec.VCPU, MemoryMiB: spec.MemoryMiB,
		Disks: []string{}, Net: spec.Net != nil, SavedAt: time.Now().UTC()}
	for _, d := range spec.Disks {
		f.Disks = append(f.Disks, d.ID)
	}
	return f
}

func (d *Driver) count(c *int) {
	d.mu.Lock()
	(*c)++
	d.mu.Unlock()
}

// Pause stalls the agent channel until Resume. Idempotent.
func (m *Machine) Pause(ctx context.Context) error {
	m.drv.count(&m.drv.Pauses)
	if m.Exited() {
		return errors.New("fake: pause: machine exited")
	}
	m.gmu.Lock()
	defer m.gmu.Unlock()
	if m.gate == nil {
		m.gate = make(chan struct{})
	}
	return nil
}

// Resume lets the agent channel flow again. Idempotent.
func (m *Machine) Resume(ctx context.Context) error {
	m.drv.count(&m.drv.Resumes)
	if m.drv.ResumeHook != nil {
		m.drv.ResumeHook(m)
	}
	if m.Exited() {
		return errors.New("fake: resume: machine exited")
	}
	m.gmu.Lock()
	defer m.gmu.Unlock()
	if m.gate != nil {
		close(m.gate)
		m.gate = nil
	}
	return nil
}

// Paused reports whether the machine is paused (a restored machine starts
// paused).
func (m *Machine) Paused() bool {
	m.gmu.Lock()
	defer m.gmu.Unlock()
	return m.gate != nil
}

// RestoredFrom is the Spec.Restore directory the machine was started
// from, or "".
func (m *Machine) RestoredFrom() string {
	if m.restoredFrom == nil {
		return ""
	}
	return m.spec.Restore
}

// SaveState writes StateFile into dir. The machine must be paused and
// stays paused. With Driver.SaveErr set it writes half a file and fails.
func (m *Machine) SaveState(ctx context.Context, dir string) (vmm.SavedState, error) {
	m.drv.count(&m.drv.SaveStates)
	if m.Exited() {
		return vmm.SavedState{}, errors.New("fake: save state: machine exited")
	}
	if !m.Paused() {
		return vmm.SavedState{}, errors.New("fake: save state: the machine is running; pause it first")
	}
	b, err := json.MarshalIndent(stateOf(m.spec), "", "  ")
	if err != nil {
		return vmm.SavedState{}, err
	}
	path := filepath.Join(dir, StateFile)
	m.drv.mu.Lock()
	saveErr := m.drv.SaveErr
	m.drv.mu.Unlock()
	if saveErr != nil {
		os.WriteFile(path, b[:len(b)/2], 0o600)
		return vmm.SavedState{}, fmt.Errorf("fake: save state: %w", saveErr)
	}
	if m.drv.SaveHook != nil {
		os.WriteFile(path, b[:len(b)/2], 0o600)
		m.drv.SaveHook(m)
		if m.Exited() {
			return vmm.SavedState{}, errors.New("fake: save state: the VMM exited during the save (connection reset)")
		}
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return vmm.SavedState{}, fmt.Errorf("fake: save state: %w", err)
	}
	v, _ := m.drv.Version(ctx)
	return vmm.SavedState{Driver: "fake", VMMVersion: v, Bytes: int64(len(b))}, nil
}

// loadState reads spec.Restore's StateFile and checks spec describes the
// saved machine.
func loadState(spec vmm.Spec) (*savedFile, error) {
	path := filepath.Join(spec.Restore, StateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fake: restore: no saved state: %w", err)
	}
	var f savedFile
	if err := json.Unmarshal(b, &f); err != nil || f.Format != stateFormat {
		return nil, fmt.Errorf("fake: restore: %s is not a fake saved state (corrupt or truncated)", path)
	}
	want := stateOf(spec)
	switch {
	case f.VCPU != want.VCPU || f.MemoryMiB != want.MemoryMiB:
		return nil, fmt.Errorf("fake: restore: state in %s is of a %d-vCPU %d MiB machine, the spec asks for %d vCPUs and %d MiB",
			spec.Restore, f.VCPU, f.MemoryMiB, want.VCPU, want.MemoryMiB)
	case !slices.Equal(f.Disks, want.Disks):
		return nil, fmt.Errorf("fake: restore: state in %s has disks %v, the spec has %v", spec.Restore, f.Disks, want.Disks)
	case f.Net != want.Net:
		return nil, fmt.Errorf("fake: restore: state in %s has net=%v, the spec has net=%v", spec.Restore, f.Net, want.Net)
	}
	return &f, nil
}

// waitRunning returns once the machine is not paused, or an error when
// ctx ends first or the machine exits.
func (m *Machine) waitRunning(ctx context.Context) error {
	for {
		m.gmu.Lock()
		g := m.gate
		m.gmu.Unlock()
		if g == nil {
			return nil
		}
		select {
		case <-g:
		case <-ctx.Done():
			return fmt.Errorf("fake: machine paused: %w", ctx.Err())
		case <-m.done:
			return errors.New("fake machine exited")
		}
	}
}

// gatedConn is the guest end of an agent session: it stalls while the
// machine is paused.
type gatedConn struct {
	net.Conn
	m *Machine
}

func (c *gatedConn) Read(p []byte) (int, error) {
	if err := c.m.waitRunning(context.Background()); err != nil {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(p)
	if err == nil {
		// bytes read while the pause began are handled after it ends
		if werr := c.m.waitRunning(context.Background()); werr != nil {
			return 0, net.ErrClosed
		}
	}
	return n, err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if err := c.m.waitRunning(context.Background()); err != nil {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}
