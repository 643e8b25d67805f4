package qemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/vmm"
)

// File-backed guest memory (vmm.MemorySpec). A machine whose RAM is a
// shared file is saved with QEMU's x-ignore-shared migration capability:
// the RAM stays out of the state file (a start-up snapshot is ~100 KB
// instead of the guest's touched memory), and SaveState records that in
// MemoryFile next to the state, so a restore knows it must map that
// memory and set the same capability on the receiving side (it changes
// the stream's format).

// MemoryFile is the note SaveState writes beside StateFile when the
// memory was left out of the state.
const MemoryFile = "memory.json"

type memoryNote struct {
	IgnoreShared bool   `json:"ignore_shared"`
	File         string `json:"file"` // the saved machine's memory file
	Bytes        int64  `json:"bytes"`
}

func writeMemoryNote(dir string, mem vmm.MemorySpec, bytes int64) error {
	file, err := filepath.Abs(mem.File)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(memoryNote{IgnoreShared: true, File: file, Bytes: bytes})
	return os.WriteFile(filepath.Join(dir, MemoryFile), b, 0o600)
}

// readMemoryNote reads dir's note; ok is false when the state holds its
// own memory.
func readMemoryNote(dir string) (n memoryNote, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, MemoryFile))
	if errors.Is(err, os.ErrNotExist) {
		return n, false, nil
	}
	if err != nil {
		return n, false, err
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return n, false, fmt.Errorf("restore: %s: %w", filepath.Join(dir, MemoryFile), err)
	}
	return n, n.IgnoreShared, nil
}

// openMemory checks and opens the memory file of spec before QEMU starts.
// A private mapping needs an existing file of exactly the guest's memory
// size (QEMU would create a missing one zero-filled, or grow a short
// one); the descriptor is what QEMU maps. A shared file (a template) is
// created by QEMU and must not exist yet (a restore fills it from a state
// that carries its memory). restoreNote is the state's
// memory note, if any. The returned file is nil when QEMU opens nothing
// of ours.
func openMemory(spec vmm.Spec, note memoryNote, noted bool) (*os.File, error) {
	mem := spec.Memory
	want := int64(spec.MemoryMiB) << 20
	if noted && note.Bytes != want {
		return nil, fmt.Errorf("restore: the state in %s has %d MiB of memory, the machine %d MiB", spec.Restore, note.Bytes>>20, spec.MemoryMiB)
	}
	if noted && mem.File == "" {
		return stateMemory(spec.Restore, want) // memfd.go: the state's own memory file
	}
	if noted && mem.Shared && hasStateMemory(spec.Restore) {
		return nil, fillShared(spec.Restore, mem.File, want) // memfd.go: a template of a memfd machine's state
	}
	if noted && mem.Shared {
		return nil, fmt.Errorf("restore: the state in %s was saved without its memory: restore it with a private mapping of its memory file (%s)", spec.Restore, note.File)
	}
	switch {
	case mem.File == "":
		return nil, nil
	case mem.Shared:
		// A restore into a new shared file is how a fork shares its
		// memory (vms/forkshare.go): the stream fills the file. A state
		// whose memory is a file (noted) was refused above: the machine
		// would write into the saved memory.
		if _, err := os.Lstat(mem.File); err == nil {
			return nil, fmt.Errorf("memory file %s already exists: a shared memory file belongs to one machine", mem.File)
		}
		return nil, nil
	}
	f, err := os.Open(mem.File)
	if err != nil {
		return nil, fmt.Errorf("memory file: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", mem.File)
	}
	if err == nil && fi.Size() != want {
		err = fmt.Errorf("%s has %d bytes, the guest's memory is %d", mem.File, fi.Size(), want)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("memory file: %w", err)
	}
	return f, nil
}
