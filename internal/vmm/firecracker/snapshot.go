package firecracker

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/banger-dev/banger/internal/vmm"
)

// Snapshots (firecracker-notes.md §4). Pause and Resume are PATCH /vm.
// SaveState is a Full PUT /snapshot/create of the paused microVM into two
// files, StateFile and MemFile. A restore starts a fresh process that gets
// only the logger, the metrics and PUT /snapshot/load with resume_vm
// false, so the machine comes back paused and the caller resumes it.
//
// What a restore needs: the same Firecracker snapshot data format (in
// practice the same binary: it rejects other formats), and the disks at
// the paths they had when saved — the API has no drive override, so
// without the jailer the disk paths must not change (with it they are
// always /drives/<id> in the chroot). The TAP may change from 1.13
// (network_overrides), the vsock uds path from 1.16 (vsock_override);
// on older versions the restored VM keeps the saved ones.

var _ vmm.Snapshotter = (*machine)(nil)

// Files SaveState writes into its directory.
const (
	StateFile = "vmstate"
	MemFile   = "memory"
)

// jailSnapDir is where a jailed restore finds the state files.
const jailSnapDir = "/snapshot"

// Pause implements vmm.Snapshotter. Repeating it is a no-op.
func (m *machine) Pause(ctx context.Context) error {
	if err := m.api.PatchVM(ctx, VMStatePaused); err != nil {
		return fmt.Errorf("firecracker pause: %w", err)
	}
	return nil
}

// Resume implements vmm.Snapshotter. Repeating it is a no-op.
func (m *machine) Resume(ctx context.Context) error {
	if err := m.api.PatchVM(ctx, VMStateResumed); err != nil {
		return fmt.Errorf("firecracker resume: %w", err)
	}
	return nil
}

// SaveState implements vmm.Snapshotter. A jailed Firecracker writes into
// its chroot's run directory; the files are then moved into dir, which
// must be on the same filesystem.
func (m *machine) SaveState(ctx context.Context, dir string) (vmm.SavedState, error) {
	fail := func(err error) (vmm.SavedState, error) {
		return vmm.SavedState{}, fmt.Errorf("firecracker save state: %w", err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	info, err := m.api.Info(ctx)
	if err != nil {
		return fail(err)
	}
	if info.State != "Paused" {
		return fail(fmt.Errorf("the microVM is %s; pause it first", info.State))
	}
	v, err := m.api.Version(ctx)
	if err != nil {
		return fail(err)
	}
	state, mem := filepath.Join(dir, StateFile), filepath.Join(dir, MemFile)
	p := SnapshotCreateParams{SnapshotType: "Full", SnapshotPath: state, MemFilePath: mem}
	if m.jailRoot != "" {
		p.SnapshotPath, p.MemFilePath = filepath.Join(jailRunDir, StateFile), filepath.Join(jailRunDir, MemFile)
	}
	err = m.api.CreateSnapshot(ctx, p)
	if m.jailRoot != "" {
		for _, f := range [][2]string{{p.SnapshotPath, state}, {p.MemFilePath, mem}} {
			src := filepath.Join(m.jailRoot, f[0])
			if err == nil {
				if rerr := os.Rename(src, f[1]); rerr != nil {
					err = fmt.Errorf("move the snapshot out of the jail (%s must be on the jail's filesystem): %w", dir, rerr)
				}
			}
			os.Remove(src)
		}
	}
	if err == nil {
		err = writeDrives(dir, m.drives)
	}
	if err != nil {
		return fail(err)
	}
	st := vmm.SavedState{Driver: DriverName, VMMVersion: v.String()}
	for _, f := range []string{state, mem} {
		var fi syscall.Stat_t
		if err := syscall.Stat(f, &fi); err != nil {
			return fail(err)
		}
		st.Bytes += fi.Blocks * 512
	}
	return st, nil
}

// restoreFiles checks a Spec.Restore directory before anything starts.
func restoreFiles(dir string) (state, mem string, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	state, mem = filepath.Join(dir, StateFile), filepath.Join(dir, MemFile)
	for _, f := range []string{state, mem} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", "", fmt.Errorf("restore: no saved firecracker state: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return "", "", fmt.Errorf("restore: %s is not a file", f)
		}
	}
	return state, mem, nil
}

// restorePlan is the whole API sequence of a restore: logger and metrics
// (the only resources a load accepts before it), then the load, paused.
// spec and f are as Firecracker sees them; state and mem too.
func restorePlan(spec vmm.Spec, f apiFiles, state, mem string, v Version) []step {
	plan := bootPlan(spec, f, v)[:2] // logger, metrics
	no := false
	load := SnapshotLoadParams{
		SnapshotPath: state,
		MemBackend:   &MemoryBackend{BackendType: "File", BackendPath: mem},
		ResumeVM:     &no,
	}
	if spec.Net != nil && v.Supports("snapshot/load.network_overrides") {
		load.NetworkOverrides = []NetworkOverride{{IfaceID: guestIfaceID, HostDevName: spec.Net.TAP}}
	}
	if v.Supports("snapshot/load.vsock_override") {
		load.VsockOverride = &VsockOverride{UDSPath: f.Vsock}
	}
	return append(plan, step{http.MethodPut, "/snapshot/load", load})
}

// stageRestore links the state files into the jail.
func (l jailLayout) stageRestore(state, mem string) error {
	if err := os.MkdirAll(l.host(jailSnapDir), 0o755); err != nil {
		return err
	}
	for _, f := range []string{state, mem} {
		dst := l.host(filepath.Join(jailSnapDir, filepath.Base(f)))
		if err := os.Link(f, dst); err != nil {
			return fmt.Errorf("link %s into jail (it must be on the same filesystem as %s): %w", f, l.Root, err)
		}
	}
	return nil
}
