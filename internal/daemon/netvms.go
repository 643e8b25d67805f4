package daemon

import (
	"context"

	"github.com/banger-dev/banger/internal/network"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vms"
)

// netVMs is the VM service as the network service sees it.
type netVMs struct {
	vms   *vms.Service
	store *store.Store
}

// NetworkVMs lists every VM with its address and whether it runs.
func (n netVMs) NetworkVMs(ctx context.Context) ([]network.VM, error) {
	list, err := n.store.ListVMs(ctx)
	out := make([]network.VM, 0, len(list))
	for _, vm := range list {
		out = append(out, network.VM{Name: vm.Name, IP: vm.IP, Running: n.vms.IsRunning(vm.ID)})
	}
	return out, err
}

// HoldReservations holds the VM service's reservation lock (no VM can be
// reserved) until release and names the VMs that use the network:
// running, or on their way in or out (a VM reserved earlier is seen in
// the store as creating).
func (n netVMs) HoldReservations(ctx context.Context) (busy []string, release func(), err error) {
	release = n.vms.LockReservations()
	list, err := n.store.ListVMs(ctx)
	if err != nil {
		release()
		return nil, nil, err
	}
	for _, vm := range list {
		switch {
		case n.vms.IsRunning(vm.ID),
			vm.State == store.StateCreating, vm.State == store.StateStarting,
			vm.State == store.StateRunning, vm.State == store.StateStopping:
			busy = append(busy, vm.Name+" ("+vm.State+")")
		}
	}
	return busy, release, nil
}
