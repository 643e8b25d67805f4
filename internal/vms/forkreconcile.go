package vms

import (
	"context"

	"github.com/banger-dev/banger/internal/store"
)

// reconcileFork removes, at daemon start, a child of a fork the daemon
// did not finish (still pending in the store): whatever of it exists —
// a VMM it started, its TAP, files, pin, row. A fork leaves whole
// children or none. It reports whether vm was such a child.
func (s *Service) reconcileFork(ctx context.Context, vm store.VM, pending map[string]bool) bool {
	if !pending[vm.ID] {
		return false
	}
	if h, err := s.dir(vm.ID).ReadHandles(); err == nil {
		if drv, ok := s.Drivers.lookup(vm.VMM); ok {
			if m, err := drv.Attach(h); err == nil {
				s.killStrays(vm, h.PID)
				s.halt(ctx, vm, &instance{m: m})
			}
		}
	}
	s.halt(ctx, vm, nil) // a VMM started but not recorded, the TAP, the runtime dir
	if err := s.discard(ctx, vm); err != nil {
		s.Log.Warn("reconcile: remove an unfinished fork child", "vm", vm.Name, "err", err)
		return true
	}
	s.Log.Info("reconcile: removed an unfinished fork child", "vm", vm.Name)
	return true
}
