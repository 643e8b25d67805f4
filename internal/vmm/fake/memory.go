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

// SaveStateWithMemory is SaveState plus mem sized as the guest's memory.
func (m *Machine) SaveStateWithMemory(ctx context.Context, dir string, mem *os.File) (vmm.SavedState, error) {
	if !m.SharesMemory() {
		return vmm.SavedState{}, fmt.Errorf("fake: save state with memory: %w", vmm.ErrNotSupported)
	}
	st, err := m.SaveState(ctx, dir)
	if err != nil {
		return st, err
	}
	if err := mem.Truncate(int64(m.spec.MemoryMiB) << 20); err != nil {
		return vmm.SavedState{}, fmt.Errorf("fake: save state with memory: %w", err)
	}
	return st, nil
}
