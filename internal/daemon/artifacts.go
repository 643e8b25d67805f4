package daemon

import (
	"context"
	"errors"

	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
)

// Images and kernels are internal/artifacts' service; these are the
// daemon's shims to it until the VM code (internal/vms) calls it itself.

func init() {
	handlerSets = append(handlerSets, func(d *Daemon) map[string]rpc.Handler { return rpcapi.ArtifactsHandlers(d.artifacts) })
	// Interrupted pulls leave layer blobs for a re-run to resume from;
	// those nobody came back for within a day go at the next start (no
	// pull runs yet when services start).
	services = append(services, func(ctx context.Context, d *Daemon) (func(), error) {
		d.artifacts.SweepBlobs()
		return func() {}, nil
	})
}

func (d *Daemon) newArtifacts() *artifacts.Service {
	return artifacts.New(artifacts.Deps{Paths: d.paths, Config: d.cfg, Log: d.log, Store: d.store,
		AgentBinary: d.agentBinary, VMs: promoteVMs{d}})
}

// promoteVMs gives promote a stopped VM, held by its lock.
type promoteVMs struct{ d *Daemon }

func (p promoteVMs) HoldStopped(ctx context.Context, name string) (store.VM, string, func(), error) {
	d := p.d
	vm, err := d.store.GetVM(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return vm, "", nil, notFound("no VM named %q: `banger vm ls` lists VMs", name)
	}
	if err != nil {
		return vm, "", nil, err
	}
	lock := d.vmLock(vm.ID)
	lock.Lock()
	if vm, err = d.store.GetVM(ctx, vm.ID); err != nil {
		lock.Unlock()
		return vm, "", nil, err
	}
	if d.vms.IsRunning(vm.ID) || (vm.State != store.StateStopped && vm.State != store.StateFailed) {
		lock.Unlock()
		return vm, "", nil, conflict("vm %s is %s: stop it first (`banger vm stop %s`) so its disk is consistent", vm.Name, vm.State, vm.Name)
	}
	return vm, d.dir(vm.ID).Overlay(), lock.Unlock, nil
}
