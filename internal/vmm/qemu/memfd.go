package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/sparse"
	"github.com/banger-dev/banger/internal/vmm"
	"golang.org/x/sys/unix"
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

// StateMemFile is the memory file SaveState writes beside the state of a
// machine whose RAM is a memfd: its RAM's allocated pages, sparse.
const StateMemFile = "mem"

// saveWithOwnMemory is SaveState for a machine whose RAM is a memfd: the
// device state without the RAM (x-ignore-shared) and the RAM's allocated
// pages in dir/StateMemFile. Migrating a memfd's RAM in the stream
// instead would read every page of it, and in shared memory each read of
// a page the guest never touched allocates one: a 1 GiB guest's VMM would
// hold 1 GiB after its first snapshot (measured: 324 → 1145 MiB PSS).
func (m *Machine) saveWithOwnMemory(ctx context.Context, dir string) (vmm.SavedState, error) {
	f, err := os.OpenFile(filepath.Join(dir, StateMemFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
	}
	st, err := m.SaveStateWithMemory(ctx, dir, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("save state: %w", cerr)
	}
	if err != nil {
		os.Remove(f.Name())
		return vmm.SavedState{}, err
	}
	return st, nil
}

// hasStateMemory says whether the state in dir has a memory file of its
// own (saveWithOwnMemory; a warm template's shared file has the same name
// and content).
func hasStateMemory(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, StateMemFile))
	return err == nil && fi.Mode().IsRegular()
}

// fillShared makes path, a new shared memory file for a machine restored
// from the state in dir (a fork's template), a copy of the state's own
// memory file.
func fillShared(dir, path string, want int64) error {
	src, err := openStateMemory(dir, want)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore: memory file: %w", err)
	}
	_, err = sparse.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("restore: copy the memory of %s: %w", dir, err)
	}
	return nil
}

// openStateMemory opens the state's own memory file, checking its size.
func openStateMemory(dir string, want int64) (*os.File, error) {
	src, err := os.Open(filepath.Join(dir, StateMemFile))
	if err != nil {
		return nil, fmt.Errorf("restore: the state in %s was saved without its memory and its memory file is missing: %w", dir, err)
	}
	if fi, err := src.Stat(); err != nil || fi.Size() != want {
		src.Close()
		return nil, fmt.Errorf("restore: the memory file in %s is not the guest's memory size (%d bytes)", dir, want)
	}
	return src, nil
}

// stateMemory is the RAM of a machine restored from a state saved with
// its own memory file (saveWithOwnMemory): a new memfd holding a copy of
// the file's pages, which the machine maps shared — so that it is a
// memfd machine again (forked without a template, saved without reading
// its untouched pages) and does not depend on the state's files.
func stateMemory(dir string, want int64) (*os.File, error) {
	src, err := openStateMemory(dir, want)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate(memfdName, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("restore: memfd: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "memfd:"+memfdName)
	if _, err := sparse.Copy(mem, src); err != nil {
		mem.Close()
		return nil, fmt.Errorf("restore: copy the memory of %s: %w", dir, err)
	}
	return mem, nil
}
