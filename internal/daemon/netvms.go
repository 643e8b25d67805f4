package daemon

import (
	"context"

	"github.com/banger-dev/banger/internal/network"
	"github.com/banger-dev/banger/internal/store"
)

// NetworkVMs is the VM list as the network service needs it.
func (d *Daemon) NetworkVMs(ctx context.Context) ([]network.VM, error) {
	vms, err := d.store.ListVMs(ctx)
	out := make([]network.VM, 0, len(vms))
	for _, vm := range vms {
		out = append(out, network.VM{Name: vm.Name, IP: vm.IP, Running: d.instance(vm.ID) != nil})
	}
	return out, err
}

// HoldReservations holds reserveMu (no VM can be reserved) until release
// and names the VMs that use the network: running, or on their way in or
// out (a VM reserved earlier is seen in the store as creating).
func (d *Daemon) HoldReservations(ctx context.Context) (busy []string, release func(), err error) {
	d.reserveMu.Lock()
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		d.reserveMu.Unlock()
		return nil, nil, err
	}
	for _, vm := range vms {
		switch {
		case d.instance(vm.ID) != nil,
			vm.State == store.StateCreating, vm.State == store.StateStarting,
			vm.State == store.StateRunning, vm.State == store.StateStopping:
			busy = append(busy, vm.Name+" ("+vm.State+")")
		}
	}
	return busy, d.reserveMu.Unlock, nil
}
