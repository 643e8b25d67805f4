package daemon

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/store"
)

// handlerSets are handler groups defined in their own files (networking,
// workspaces, images), each registered from an init function.
var handlerSets []func(d *Daemon) map[string]rpc.Handler

func (d *Daemon) handlers(shutdown func()) map[string]rpc.Handler {
	hs := d.coreHandlers(shutdown)
	for _, set := range handlerSets {
		for name, h := range set(d) {
			if _, dup := hs[name]; dup {
				panic("daemon: handler registered twice: " + name)
			}
			hs[name] = h
		}
	}
	for name, h := range hs {
		hs[name] = withProgressEvents(h)
	}
	return hs
}

func (d *Daemon) coreHandlers(shutdown func()) map[string]rpc.Handler {
	return map[string]rpc.Handler{
		api.MethodStatus: func(ctx context.Context, c *rpc.Call) (any, error) { return d.status(), nil },
		api.MethodShutdown: func(ctx context.Context, c *rpc.Call) (any, error) {
			st := d.status()
			st.Interrupted = d.relays.describe()
			time.AfterFunc(50*time.Millisecond, shutdown)
			return st, nil
		},
		api.MethodVMCreate: d.handleCreate,
		api.MethodVMRun:    d.handleRun,
		api.MethodVMList:   d.handleList,
		api.MethodVMShow: func(ctx context.Context, c *rpc.Call) (any, error) {
			vm, err := d.lookup(ctx, c)
			if err != nil {
				return nil, err
			}
			return d.view(vm), nil
		},
		api.MethodVMStart:  d.handleStart,
		api.MethodVMStop:   d.handleStop,
		api.MethodVMDelete: d.handleDelete,
		api.MethodVMSSH:    d.handleSSH,
	}
}

func (d *Daemon) view(vm store.VM) api.VM {
	v := api.VM{
		ID: vm.ID, Name: vm.Name, State: vm.State, Image: vm.Image, Kernel: vm.Kernel, VMM: vm.VMM,
		VCPU: vm.VCPU, MemoryMiB: vm.MemoryMiB, DiskBytes: vm.DiskBytes, IP: vm.IP, MAC: vm.MAC,
		LastError: vm.LastError, CreatedAt: vm.CreatedAt, ConsoleLog: d.consoleLog(vm.ID), Dir: d.paths.VMDir(vm.ID),
	}
	if in := d.instance(vm.ID); in != nil {
		v.PID = in.m.Handles().PID
	}
	return v
}

// lookup resolves a user-given name: exact name or id first, then a
// unique prefix of a name. Destructive commands use exactVM instead.
func (d *Daemon) lookup(ctx context.Context, c *rpc.Call) (store.VM, error) {
	var p api.NameParams
	if err := c.Decode(&p); err != nil {
		return store.VM{}, err
	}
	return d.resolveName(ctx, p.Name)
}

// resolveName finds a VM by exact name or id, else by a unique name prefix.
// Uniqueness checks on create use exact names only.
func (d *Daemon) resolveName(ctx context.Context, name string) (store.VM, error) {
	p := api.NameParams{Name: name}
	if p.Name == "" {
		return store.VM{}, invalid("a VM name is required")
	}
	vm, err := d.store.GetVM(ctx, p.Name)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return vm, err
	}
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		return vm, err
	}
	var matches []store.VM
	names := make([]string, len(vms))
	for i, v := range vms {
		names[i] = v.Name
		if strings.HasPrefix(v.Name, p.Name) {
			matches = append(matches, v)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0: // a typo: `vm ssh dve` suggests dev, as `vm delete dve` does
		return vm, notFound("no VM named %q%s", p.Name, didYouMean(p.Name, names, "`banger vm ls` lists VMs"))
	}
	several := make([]string, len(matches))
	for i, m := range matches {
		several[i] = m.Name
	}
	return vm, invalid("%q matches several VMs (%s): give more of the name", p.Name, strings.Join(several, ", "))
}

func (d *Daemon) handleCreate(ctx context.Context, c *rpc.Call) (any, error) {
	var p api.CreateParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	if p.NoWait {
		return d.createNoWait(ctx, c, p)
	}
	vm, err := d.createVM(ctx, p, c.Progress)
	if err != nil {
		return nil, err
	}
	return d.view(vm), nil
}

func (d *Daemon) handleList(ctx context.Context, c *rpc.Call) (any, error) {
	vms, err := d.store.ListVMs(ctx)
	out := []api.VM{}
	for _, vm := range vms {
		out = append(out, d.view(vm))
	}
	return out, err
}

func (d *Daemon) handleStart(ctx context.Context, c *rpc.Call) (any, error) {
	vm, err := d.lookup(ctx, c)
	if err != nil {
		return nil, err
	}
	lock := d.vmLock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	if d.instance(vm.ID) != nil {
		return nil, conflict("vm %s is already running", vm.Name)
	}
	if err := d.bootVM(context.WithoutCancel(ctx), &vm, true, c.Progress); err != nil {
		return nil, err
	}
	return d.view(vm), nil
}

func (d *Daemon) handleStop(ctx context.Context, c *rpc.Call) (any, error) {
	vm, err := d.lookup(ctx, c)
	if err != nil {
		return nil, err
	}
	lock := d.vmLock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	if err := d.stopVM(context.WithoutCancel(ctx), vm); err != nil {
		return nil, err
	}
	vm, err = d.store.GetVM(ctx, vm.ID)
	return d.view(vm), err
}

func (d *Daemon) handleDelete(ctx context.Context, c *rpc.Call) (any, error) {
	var p api.NameParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	vm, err := d.exactVM(ctx, p.Name) // names.go: a prefix never deletes
	if err != nil {
		return nil, err
	}
	return d.view(vm), d.deleteVM(context.WithoutCancel(ctx), vm)
}

// deleteVM kills a VM if running and removes all of it.
func (d *Daemon) deleteVM(ctx context.Context, vm store.VM) error {
	lock := d.vmLock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	d.halt(ctx, vm, d.instance(vm.ID))
	defer d.notifyVMChanged()
	return d.discard(ctx, vm)
}

// createNoWait returns as soon as the VM is reserved; the create goes on
// in the background and its outcome shows in `vm show`.
func (d *Daemon) createNoWait(ctx context.Context, c *rpc.Call, p api.CreateParams) (any, error) {
	if p.Name == "" {
		p.Name = "vm-" + randHex(3) // needed to find the VM once reserved
	}
	reserved := make(chan string, 1)
	failed := make(chan error, 1)
	d.bgWG.Add(1)
	go func() {
		defer d.bgWG.Done()
		_, err := d.createVM(context.WithoutCancel(ctx), p, func(stage, msg string) {
			if stage == stageReserved {
				select {
				case reserved <- p.Name:
				default:
				}
			}
			c.Progress(stage, msg)
		})
		if err != nil {
			failed <- err
		}
	}()
	select {
	case <-reserved:
		vm, err := d.store.GetVM(ctx, p.Name)
		return d.view(vm), err
	case err := <-failed:
		return nil, err
	}
}
