package vms

import (
	"context"
	"fmt"
	"time"

	"github.com/banger-dev/banger/internal/store"
)

// A VMM killed (kill -9, OOM) in the middle of a save or a restore. The
// operation's call into the VMM fails (its control connection breaks);
// the operation then removes what it had half-made (*.tmp) and, instead
// of resuming a machine that is gone, releases its host resources and
// leaves the VM stopped: `vm start` boots it from its disks, or continues
// it when a complete saved state remains (a VMM that died after loading
// a saved state but before the VM continued leaves that state saved).

// exitGrace is how long an operation whose call into the VMM failed
// waits for the VMM's exit to be noticed: after a kill the connection
// breaks a moment before the process is reaped.
const exitGrace = 250 * time.Millisecond

// vmmExited reports whether in's VMM has exited, waiting up to grace.
func vmmExited(in *instance, grace time.Duration) bool {
	if in == nil || in.m == nil {
		return false
	}
	if grace <= 0 {
		select {
		case <-in.m.Done():
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-in.m.Done():
		return true
	case <-t.C:
		return false
	}
}

// vmmDied releases a VM's dead VMM and marks the VM stopped, its last
// error saying what happened; opErr is the operation's own error.
func (s *Service) vmmDied(ctx context.Context, vm store.VM, in *instance, opErr error) error {
	s.halt(ctx, vm, in)
	err := fmt.Errorf("%w; the VMM of vm %s exited during it (killed?)", opErr, vm.Name)
	s.Store.SetVMState(ctx, vm.ID, store.StateStopped, err.Error())
	s.OnChange()
	return err
}

// stoppedHint is what to do with a VM that vmmDied left stopped.
func stoppedHint(vm store.VM) string {
	return fmt.Sprintf("vm %s is stopped: `banger vm start %s` boots it from its disks", vm.Name, vm.Name)
}
