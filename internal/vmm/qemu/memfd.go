package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/sparse"
	"github.com/banger-dev/banger/internal/vmm"
)

// A machine booted with anonymous memory (no Spec.Memory, no Restore)
// gets its RAM as a shared memfd instead (memory-backend-memfd,
// share=on): memory like anonymous memory — nothing on disk or in
// /dev/shm, gone with the process — that the host can read while the
// machine is paused, through /proc/<pid>/fd. A fork's instant
// (vms/fork.go) then saves the device state with x-ignore-shared (~100
// KB) and copies the RAM's allocated pages into the fork point's memory
// file, which the children map privately: no second QEMU has to load the
// memory into a file first. A restore keeps anonymous RAM: QEMU 7.2's
// loader reads every page the stream marks zero, and in a shared memfd
// each such read would allocate a page (1 GiB for a 1 GiB guest).

var _ vmm.MemorySaver = (*Machine)(nil)

// memfdName is the name QEMU gives the memfd of a memory-backend-memfd
// (its QOM type); /proc/<pid>/fd/N links to "/memfd:<name> (deleted)".
const memfdName = "memory-backend-memfd"

// memfdObject is the -object of a machine's RAM as a shared memfd.
func memfdObject(spec vmm.Spec) string {
	return fmt.Sprintf("%s,id=%s,size=%dM,share=on", memfdName, memoryID, spec.MemoryMiB)
}

// memfdPath finds the RAM memfd among pid's descriptors: the
// /proc/<pid>/fd/N path that opens it, or "" when the machine's RAM is
// not a memfd (booted before banger used one, restored, or a file).
func memfdPath(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if l, err := os.Readlink(p); err == nil && strings.HasPrefix(l, "/memfd:"+memfdName+" ") {
			return p
		}
	}
	return ""
}

// SharesMemory reports whether the machine's RAM is a memfd this process
// can read (also for a machine attached by a restarted daemon).
func (m *Machine) SharesMemory() bool {
	return alive(m.h) && memfdPath(m.h.PID) != ""
}

// SaveStateWithMemory saves the paused machine's devices without its RAM
// (x-ignore-shared) into dir and copies the RAM's allocated pages into
// out, with a memory note naming it: a restore maps it privately. The
// machine stays paused and may be resumed. dir and out are the caller's
// to remove on failure.
func (m *Machine) SaveStateWithMemory(ctx context.Context, dir string, out *os.File) (vmm.SavedState, error) {
	src := memfdPath(m.h.PID)
	if src == "" {
		return vmm.SavedState{}, fmt.Errorf("save state with memory: %w: the machine's RAM is not a memfd", vmm.ErrNotSupported)
	}
	mem, err := os.Open(src)
	if err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state with memory: %w", err)
	}
	defer mem.Close()
	st, err := m.save(ctx, dir, true)
	if err != nil {
		return st, err
	}
	n, err := sparse.Copy(out, mem)
	var fi os.FileInfo
	if err == nil {
		fi, err = out.Stat()
	}
	if err == nil {
		err = writeMemoryNote(dir, vmm.MemorySpec{File: out.Name()}, fi.Size())
	}
	if err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state with memory: %w", err)
	}
	st.Bytes += n
	return st, nil
}
