package daemon

import (
	"context"

	"github.com/banger-dev/banger/internal/store"
)

// reconcile rebuilds in-memory state from the store and the host after a
// daemon start: VMs whose VMM still runs are re-attached (and keep
// running); the others are marked stopped and their host resources
// released. Interrupted creates are marked failed.
func (d *Daemon) reconcile(ctx context.Context) {
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		d.log.Error("reconcile: list vms", "err", err)
		return
	}
	for _, vm := range vms {
		d.reconcileVM(ctx, vm)
	}
	d.notifyVMChanged()
}

func (d *Daemon) reconcileVM(ctx context.Context, vm store.VM) {
	switch vm.State {
	case store.StateStopped, store.StateFailed:
		d.reconcileStrays(ctx, vm) // strays.go
		return
	}
	h, err := d.dir(vm.ID).ReadHandles()
	drv, ok := d.drivers.lookup(vm.VMM)
	if err == nil && ok {
		if m, err := drv.Attach(h); err == nil {
			d.killStrays(vm, h.PID) // a second VMM on the same disks
			in := &instance{m: m}
			d.setInstance(vm.ID, in)
			if vm.State != store.StateRunning {
				d.store.SetVMState(ctx, vm.ID, store.StateRunning, "")
			}
			d.startWatch(vm.ID, in)
			d.log.Info("reconcile: re-attached", "vm", vm.Name, "pid", h.PID)
			return
		}
	}
	stray := d.reconcileStrays(ctx, vm)
	d.halt(ctx, vm, nil)
	state, why := store.StateStopped, "the VMM was gone when the daemon started"
	if vm.State == store.StateCreating || vm.State == store.StateStarting {
		state, why = store.StateFailed, "the daemon stopped while the VM was "+vm.State
	}
	if stray != "" && state == store.StateStopped {
		why = "the daemon could not re-attach the VMM"
	}
	why += stray
	d.store.SetVMState(ctx, vm.ID, state, why)
	d.log.Info("reconcile: marked", "vm", vm.Name, "state", state)
}
