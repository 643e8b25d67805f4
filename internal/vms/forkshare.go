package vms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vmm"
)

// Memory shared between a fork's children. When the parent's RAM is
// host-readable shared memory (qemu: a memfd, every booted VM's), the
// fork's instant copies it into a memfd of the daemon's
// (newForkMemory): in memory, never on a disk, freed with the last
// child's mapping or with the daemon if it dies mid-fork. Children map it
// privately through /proc/self/fd (the driver opens that path in the
// daemon and hands the descriptor over).
//
// Otherwise (the parent was itself restored from a template or from a
// state with its RAM in the stream: a fork child, a warm clone, a VM
// saved by an earlier banger) the fork point's state carries the
// parent's RAM in its stream, so children restored from it each get
// private anonymous RAM. shareMemory then turns it into a template,
// as warm starts have (warm.go): a short-lived VMM restores the state
// into a new memory file mapped shared (the stream fills the file), is
// saved again with the memory left in that file (qemu x-ignore-shared:
// a state of ~100 KB), and ends. Children then map the file privately
// (copy-on-write): they share every page none of them writes, through
// the page cache. The template never runs: its vCPUs stay stopped from
// the load to the kill.

// forkMemFile is the template's memory file in the fork point.
const forkMemFile = "mem"

// newForkMemory is an empty memfd (close-on-exec) for a fork point's
// memory.
func newForkMemory(parent string) (*os.File, error) {
	fd, err := unix.MemfdCreate("banger-fork-"+parent, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fork point memory: memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), "memfd:banger-fork-"+parent), nil
}

// fdPath is the path that opens f again in this process (also a memfd,
// which has no other).
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// memorySaver is a Snapshotter whose SaveState also copies the machine's
// shared RAM into mem (vmm.MemorySaver), for captureInstant.
type memorySaver struct {
	vmm.Snapshotter
	ms  vmm.MemorySaver
	mem *os.File
}

func (m memorySaver) SaveState(ctx context.Context, dir string) (vmm.SavedState, error) {
	if err := m.mem.Truncate(0); err != nil { // a retried save starts empty
		return vmm.SavedState{}, err
	}
	return m.ms.SaveStateWithMemory(ctx, dir, m.mem)
}

// shareMemory makes point a template with a shared memory file, or
// leaves it as it was (children with private RAM) when the driver has no
// file-backed memory (vmm.ErrNotSupported: firecracker maps its memory
// file privately by itself) or the template fails — with a progress line
// saying so, never failing the fork.
func (s *Service) shareMemory(ctx context.Context, parent store.VM, point *forkPoint, r progress.Reporter) {
	start := time.Now()
	state, mem, loaded, err := s.forkTemplate(ctx, parent, point.dir, r)
	if err != nil {
		if !errors.Is(err, vmm.ErrNotSupported) {
			s.Log.Warn("fork: children will not share memory", "vm", parent.Name, "err", err)
			progress.Stage(r, "fork", fmt.Sprintf("warning: the children will not share memory pages: %v", err))
		}
		return
	}
	point.state, point.memory = state, vmm.MemorySpec{File: mem}
	progress.Stage(r, "fork", fmt.Sprintf("memory of the fork point in a shared file for the children (%s, of which the template's start and load %s)",
		time.Since(start).Round(time.Millisecond), loaded.Round(time.Millisecond)))
}

// forkTemplate restores the fork point in dir into a VMM whose RAM is a
// new shared file, saves it without its memory into dir/shared and ends
// it. It returns the new state directory, the memory file and how long
// the template's VMM took to start and load the state.
func (s *Service) forkTemplate(ctx context.Context, parent store.VM, dir string, r progress.Reporter) (state, mem string, loaded time.Duration, err error) {
	drv, ok := s.Drivers.lookup(parent.VMM)
	if !ok {
		return "", "", 0, fmt.Errorf("no %s driver", parent.VMM)
	}
	plan, err := s.planFor(ctx, parent)
	if err != nil {
		return "", "", 0, err
	}
	initrd, err := s.Artifacts.Initrd(ctx, plan.Kernel, r)
	if err != nil {
		return "", "", 0, err
	}
	disks, _ := s.diskSet(parent, plan)
	copies := vmdir.SnapshotDisks(dir)
	for i := range disks {
		switch disks[i].ID { // the template never runs: it writes no disk
		case "overlay":
			disks[i].Path = copies[0]
		case "work":
			disks[i].Path = copies[1]
		}
	}
	id := "fork-" + randHex(4)
	rt := filepath.Join(s.Paths.RuntimeDir, id)
	os.RemoveAll(rt)
	if err := os.MkdirAll(rt, 0o700); err != nil {
		return "", "", 0, err
	}
	defer os.RemoveAll(rt)
	spec := specOf(parent, plan.Kernel, initrd, disks, rt, filepath.Join(dir, "template-console.log"))
	spec.ID, spec.Name = id, id
	spec.Restore = vmdir.StateDir(dir)
	mem = filepath.Join(dir, forkMemFile)
	spec.Memory = vmm.MemorySpec{File: mem, Shared: true}
	tap := "bgtf" + id[5:]
	if err := s.Net.CreateTAP(ctx, tap); err != nil {
		return "", "", 0, fmt.Errorf("tap: %w", err)
	}
	defer s.Net.DeleteTAP(context.WithoutCancel(ctx), tap)
	spec.Net.TAP, spec.Net.MAC = tap, macFor(id)
	t0 := time.Now()
	m, err := drv.Start(ctx, spec)
	loaded = time.Since(t0)
	if err != nil {
		os.Remove(mem)
		return "", "", 0, err
	}
	defer m.Kill()
	sn, ok := m.(vmm.Snapshotter)
	if !ok {
		return "", "", 0, vmm.ErrNotSupported
	}
	state = filepath.Join(dir, "shared")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return "", "", 0, err
	}
	if _, err := sn.SaveState(ctx, state); err != nil {
		return "", "", 0, err
	}
	m.Kill()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		return "", "", 0, errors.New("the template vmm did not exit")
	}
	return state, mem, loaded, nil
}
