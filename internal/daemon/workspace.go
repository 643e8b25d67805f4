package daemon

import (
	"context"

	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/workspaces"
)

func init() {
	handlerSets = append(handlerSets, func(d *Daemon) map[string]rpc.Handler {
		return rpcapi.WorkspaceHandlers(d.workspaces, d.vms)
	})
}

// guestFS maps a guest path to where the agent writes it. Daemon tests
// run the agent on the host (the fake VMM) and point it at a temporary
// directory; in production it is the identity.
var guestFS = func(p string) string { return p }

// newWorkspaces is the workspace service over this daemon's VMs.
func newWorkspaces(d *Daemon) *workspaces.Service {
	return workspaces.New(workspaces.Deps{Guests: wsGuests{d}, Log: d.log,
		GuestFS: func(p string) string { return guestFS(p) }})
}

// wsGuests is the VM side as the workspace service needs it.
type wsGuests struct{ d *Daemon }

func (g wsGuests) Lookup(ctx context.Context, name string) (workspaces.VM, error) {
	vm, err := g.d.vms.Resolve(ctx, name)
	return workspaces.VM{ID: vm.ID, Name: vm.Name, State: vm.State}, err
}

func (g wsGuests) Agent(ctx context.Context, id string) (workspaces.Agent, error) {
	in := g.d.instance(id)
	if in == nil {
		return nil, workspaces.ErrNotRunning
	}
	ac, err := in.agentClient(ctx)
	if err != nil {
		return nil, err
	}
	return ac, nil
}

func (g wsGuests) Running(id string) bool { return g.d.instance(id) != nil }

func notRunning(vm store.VM) error {
	return conflict("vm %s is %s: start it with `banger vm start %s`", vm.Name, vm.State, vm.Name)
}
