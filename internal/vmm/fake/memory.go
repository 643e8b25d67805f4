package fake

import (
	"context"
	"fmt"
	"os"

	"github.com/banger-dev/banger/internal/vmm"
)

var _ vmm.MemorySaver = (*Machine)(nil)

// SharesMemory is true for a booted machine (no Restore, no memory file)
// of a driver with SharedRAM set.
func (m *Machine) SharesMemory() bool {
	m.drv.mu.Lock()
	on := m.drv.SharedRAM
	m.drv.mu.Unlock()
	return on && m.spec.Restore == "" && m.spec.Memory.File == "" && !m.Exited()
}

// SaveStateWithMemory is SaveState plus memFile: a sparse file of the
// guest's memory size, created (it must not exist).
func (m *Machine) SaveStateWithMemory(ctx context.Context, dir, memFile string) (vmm.SavedState, error) {
	if !m.SharesMemory() {
		return vmm.SavedState{}, fmt.Errorf("fake: save state with memory: %w", vmm.ErrNotSupported)
	}
	st, err := m.SaveState(ctx, dir)
	if err != nil {
		return st, err
	}
	f, err := os.OpenFile(memFile, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		err = f.Truncate(int64(m.spec.MemoryMiB) << 20)
		f.Close()
	}
	if err != nil {
		os.Remove(memFile)
		return vmm.SavedState{}, fmt.Errorf("fake: save state with memory: %w", err)
	}
	return st, nil
}
