package vms

import (
	"context"
	"errors"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/suggest"
)

// The typed methods behind vm create/ls/show/start/stop/restart/delete.

// Create reserves, prepares and boots a VM. With NoWait it returns as
// soon as the VM is reserved; the create goes on in the background and
// its outcome shows in `vm show`.
func (s *Service) Create(ctx context.Context, p api.CreateParams, r progress.Reporter) (api.VM, error) {
	r = progress.Or(r)
	if p.NoWait {
		return s.createNoWait(ctx, p, r)
	}
	vm, err := s.create(ctx, p, nil, r)
	if err != nil {
		return api.VM{}, err
	}
	return s.View(vm), nil
}

// List is every VM.
func (s *Service) List(ctx context.Context) ([]api.VM, error) {
	vms, err := s.Store.ListVMs(ctx)
	out := []api.VM{}
	for _, vm := range vms {
		out = append(out, s.View(vm))
	}
	return out, err
}

// Show is one VM, by name, id or unique name prefix.
func (s *Service) Show(ctx context.Context, name string) (api.VM, error) {
	vm, err := s.Resolve(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	return s.View(vm), nil
}

// Start boots a stopped VM and waits for its sshd; a saved VM continues
// from its saved state (save.go).
func (s *Service) Start(ctx context.Context, name string, r progress.Reporter) (api.VM, error) {
	return s.StartWith(ctx, api.StartParams{Name: name}, r)
}

// Stop shuts a VM down gracefully, then kills it.
func (s *Service) Stop(ctx context.Context, name string) (api.VM, error) {
	vm, unlock, err := s.lockResolved(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	if vm.State == store.StateSaved {
		return api.VM{}, api.Conflictf("vm %s is saved, not running: `banger vm start %s` continues it; `banger vm start --cold %s` boots it from its disks, discarding the saved state", vm.Name, vm.Name, vm.Name)
	}
	if err := s.stopVM(context.WithoutCancel(ctx), vm); err != nil {
		return api.VM{}, err
	}
	vm, err = s.Store.GetVM(ctx, vm.ID)
	return s.View(vm), err
}

// Delete kills a VM if it runs and removes all of it. Only an exact name
// or id deletes (names.go).
func (s *Service) Delete(ctx context.Context, name string) (api.VM, error) {
	vm, err := s.exactVM(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	return s.View(vm), s.deleteVM(context.WithoutCancel(ctx), vm)
}

// deleteVM kills a VM if running and removes all of it.
func (s *Service) deleteVM(ctx context.Context, vm store.VM) error {
	lock := s.lockVM(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	s.halt(ctx, vm, s.instance(vm.ID))
	defer s.OnChange()
	return s.discard(ctx, vm)
}

// createNoWait returns as soon as the VM is reserved.
func (s *Service) createNoWait(ctx context.Context, p api.CreateParams, r progress.Reporter) (api.VM, error) {
	if p.Name == "" {
		p.Name = "vm-" + randHex(3) // needed to find the VM once reserved
	}
	reserved := make(chan string, 1)
	failed := make(chan error, 1)
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		_, err := s.create(context.WithoutCancel(ctx), p, nil, progress.Func(func(ev api.Progress) {
			if ev.Stage == StageReserved {
				select {
				case reserved <- p.Name:
				default:
				}
			}
			r.Report(ev)
		}))
		if err != nil {
			failed <- err
		}
	}()
	select {
	case <-reserved:
		vm, err := s.Store.GetVM(ctx, p.Name)
		return s.View(vm), err
	case err := <-failed:
		return api.VM{}, err
	}
}

// Resolve finds a VM by exact name or id, else by a unique name prefix.
// Uniqueness checks on create use exact names only; destructive commands
// use exactVM.
func (s *Service) Resolve(ctx context.Context, name string) (store.VM, error) {
	if name == "" {
		return store.VM{}, api.Invalidf("a VM name is required")
	}
	vm, err := s.Store.GetVM(ctx, name)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return vm, err
	}
	vms, err := s.Store.ListVMs(ctx)
	if err != nil {
		return vm, err
	}
	var matches []store.VM
	names := make([]string, len(vms))
	for i, v := range vms {
		names[i] = v.Name
		if strings.HasPrefix(v.Name, name) {
			matches = append(matches, v)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0: // a typo: `vm ssh dve` suggests dev, as `vm delete dve` does
		return vm, api.NotFoundf("no VM named %q%s", name, suggest.Hint(name, names, "`banger vm ls` lists VMs"))
	}
	several := make([]string, len(matches))
	for i, m := range matches {
		several[i] = m.Name
	}
	return vm, api.Invalidf("%q matches several VMs (%s): give more of the name", name, strings.Join(several, ", "))
}
