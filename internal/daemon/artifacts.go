package daemon

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
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

// eventsKey carries, in a request's context, the sender of whole progress
// events (api.Progress with counts): progressFn has room for text only.
type eventsKey struct{}

// withProgressEvents gives every handler's context its call's sender.
func withProgressEvents(h rpc.Handler) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		return h(context.WithValue(ctx, eventsKey{}, c.Send), c)
	}
}

// reporter is a progress.Reporter for code that still threads a
// progressFn: whole events (byte counts) go to the call's sender when the
// context has one, text to fn otherwise.
func reporter(ctx context.Context, fn progressFn) progress.Reporter {
	if send, ok := ctx.Value(eventsKey{}).(func(api.Progress)); ok && send != nil {
		return progress.Func(func(p api.Progress) {
			if p.Unit != "" {
				send(p)
				return
			}
			fn(p.Stage, p.Message)
		})
	}
	return progress.Func(func(p api.Progress) { fn(p.Stage, p.Message) })
}

func (d *Daemon) ensureArtifacts(ctx context.Context, imageName string, fn progressFn) (store.Image, store.Kernel, error) {
	return d.artifacts.BootArtifacts(ctx, imageName, reporter(ctx, fn))
}

func (d *Daemon) ensureInitrd(ctx context.Context, k store.Kernel, fn progressFn) (string, error) {
	return d.artifacts.Initrd(ctx, k, reporter(ctx, fn))
}

func (d *Daemon) guestInit(imageName string) string { return d.artifacts.GuestInit(imageName) }

func (d *Daemon) sshdMissing(ctx context.Context, vm store.VM) error {
	return d.artifacts.SSHDMissing(ctx, vm)
}

func kernelModules(k store.Kernel) (vmm.Disk, proto.GuestDisk, bool) {
	return artifacts.KernelModules(k)
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
	if d.instance(vm.ID) != nil || (vm.State != store.StateStopped && vm.State != store.StateFailed) {
		lock.Unlock()
		return vm, "", nil, conflict("vm %s is %s: stop it first (`banger vm stop %s`) so its disk is consistent", vm.Name, vm.State, vm.Name)
	}
	return vm, filepath.Join(d.paths.VMDir(vm.ID), "overlay.ext4"), lock.Unlock, nil
}
