package vms

import (
	"context"
	"errors"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// HoldStopped resolves the VM named name (exactly), takes its lifecycle
// lock and checks that it is stopped (or failed), so that it cannot start
// while its overlay is read (image promote). release unlocks it.
func (s *Service) HoldStopped(ctx context.Context, name string) (vm store.VM, overlay string, release func(), err error) {
	vm, err = s.Store.GetVM(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return vm, "", nil, api.NotFoundf("no VM named %q: `banger vm ls` lists VMs", name)
	}
	if err != nil {
		return vm, "", nil, err
	}
	unlock := s.LockVM(vm.ID)
	if vm, err = s.Store.GetVM(ctx, vm.ID); err != nil {
		unlock()
		return vm, "", nil, err
	}
	if s.IsRunning(vm.ID) || (vm.State != store.StateStopped && vm.State != store.StateFailed) {
		unlock()
		return vm, "", nil, api.Conflictf("vm %s is %s: stop it first (`banger vm stop %s`) so its disk is consistent", vm.Name, vm.State, vm.Name)
	}
	return vm, s.dir(vm.ID).Overlay(), unlock, nil
}
