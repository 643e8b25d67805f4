package vms

import (
	"context"

	"github.com/banger-dev/banger/internal/store"
)

// Reconcile rebuilds in-memory state from the store and the host after a
// daemon start: VMs whose VMM still runs are re-attached (and keep
// running); the others are marked stopped and their host resources
// released. Interrupted creates are marked failed.
func (s *Service) Reconcile(ctx context.Context) {
	vms, err := s.Store.ListVMs(ctx)
	if err != nil {
		s.Log.Error("reconcile: list vms", "err", err)
		return
	}
	for _, vm := range vms {
		s.reconcileVM(ctx, vm)
	}
	s.OnChange()
}

func (s *Service) reconcileVM(ctx context.Context, vm store.VM) {
	switch vm.State {
	case store.StateStopped, store.StateFailed:
		s.reconcileStrays(ctx, vm) // strays.go
		return
	}
	h, err := s.dir(vm.ID).ReadHandles()
	drv, ok := s.Drivers.lookup(vm.VMM)
	if err == nil && ok {
		if m, err := drv.Attach(h); err == nil {
			s.killStrays(vm, h.PID) // a second VMM on the same disks
			in := &instance{m: m}
			s.setInstance(vm.ID, in)
			if vm.State != store.StateRunning {
				s.Store.SetVMState(ctx, vm.ID, store.StateRunning, "")
			}
			s.startWatch(vm.ID, in)
			s.Log.Info("reconcile: re-attached", "vm", vm.Name, "pid", h.PID)
			return
		}
	}
	stray := s.reconcileStrays(ctx, vm)
	s.halt(ctx, vm, nil)
	state, why := store.StateStopped, "the VMM was gone when the daemon started"
	if vm.State == store.StateCreating || vm.State == store.StateStarting {
		state, why = store.StateFailed, "the daemon stopped while the VM was "+vm.State
	}
	if stray != "" && state == store.StateStopped {
		why = "the daemon could not re-attach the VMM"
	}
	why += stray
	s.Store.SetVMState(ctx, vm.ID, state, why)
	s.Log.Info("reconcile: marked", "vm", vm.Name, "state", state)
}
