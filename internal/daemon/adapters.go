package daemon

import (
	"context"
	"io"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/network"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vms"
	"github.com/banger-dev/banger/internal/workspaces"
)

// The adapters between services: each service declares the small
// interface it needs of another, and these satisfy it. They hold the
// services by reference because the services need each other (the VM
// service boots from artifacts, promote holds a VM): all are set before
// any call.

// guestFS maps a guest path to where the agent writes it. Daemon tests
// run the agent on the host (the fake VMM) and point it at a temporary
// directory; in production it is the identity.
var guestFS = func(p string) string { return p }

// guestClock is the VM service's settime/reseed (zero: the agent's).
// Daemon tests replace it: their agent runs on the host, whose clock
// must not be set.
var guestClock vms.GuestClock

// vmsForArtifacts is the VM service as image promote needs it.
type vmsForArtifacts struct{ s *rpcapi.Services }

func (a vmsForArtifacts) HoldStopped(ctx context.Context, name string) (store.VM, string, func(), error) {
	return a.s.VMs.HoldStopped(ctx, name)
}

// guests is the VM service as the workspace service needs it.
type guests struct{ s *rpcapi.Services }

func (g guests) Lookup(ctx context.Context, name string) (workspaces.VM, error) {
	vm, err := g.s.VMs.Resolve(ctx, name)
	return workspaces.VM{ID: vm.ID, Name: vm.Name, State: vm.State}, err
}

func (g guests) Agent(ctx context.Context, id string) (workspaces.Agent, error) {
	if !g.s.VMs.IsRunning(id) {
		return nil, workspaces.ErrNotRunning
	}
	ac, err := g.s.VMs.AgentClient(ctx, id)
	if err != nil {
		return nil, err
	}
	return ac, nil
}

func (g guests) Running(id string) bool { return g.s.VMs.IsRunning(id) }

// importer is the workspace service as vm run needs it: the repository's
// archive, imported once the VM is up and before the command starts.
type importer struct{ s *rpcapi.Services }

func (i importer) PrepareRun(ctx context.Context, p *api.RunParams, archive io.Reader) (vms.ImportFunc, error) {
	spec, err := workspaces.CheckSpec(p.Workspace)
	if err != nil || spec == nil {
		return nil, err
	}
	return func(ctx context.Context, vm store.VM, p *api.RunParams, r progress.Reporter) error {
		dir, err := i.s.Workspaces.ImportForRun(ctx, workspaces.VM{ID: vm.ID, Name: vm.Name, State: vm.State}, spec, archive, r)
		if err == nil && p.Dir == "" {
			p.Dir = dir
		}
		return err
	}, nil
}

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
