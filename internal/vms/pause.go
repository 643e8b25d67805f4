package vms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// Pause, resume, stop --save and snapshots (issue 13) all run under the
// VM's lifecycle lock (lockVM), the same lock as start/stop/delete: while
// one of them runs, no other lifecycle operation on that VM starts, and
// the watcher that notices a VMM's exit waits for it. Service.mu is taken
// only briefly inside (the instance map), never across I/O.

// guestOpTimeout bounds the agent calls that follow a resume (settime,
// reseed): a guest that does not answer in time gets a warning.
const guestOpTimeout = 10 * time.Second

// lockResolved resolves a VM, takes its lifecycle lock and reads its row
// again under the lock: a decision on its state (saved, paused) must not
// act on a state another operation changed while this one waited.
func (s *Service) lockResolved(ctx context.Context, name string) (store.VM, func(), error) {
	vm, err := s.Resolve(ctx, name)
	if err != nil {
		return vm, nil, err
	}
	lock := s.lockVM(vm.ID)
	lock.Lock()
	cur, err := s.Store.GetVM(ctx, vm.ID)
	if err != nil {
		lock.Unlock()
		if errors.Is(err, store.ErrNotFound) {
			return vm, nil, api.NotFoundf("vm %s was deleted meanwhile", vm.Name)
		}
		return vm, nil, err
	}
	return cur, lock.Unlock, nil
}

// snapshotter returns a running VM's instance and its Snapshotter, or an
// error saying why the VM cannot be paused or saved.
func (s *Service) snapshotter(vm store.VM) (*instance, vmm.Snapshotter, error) {
	in := s.instance(vm.ID)
	if in == nil {
		return nil, nil, NotRunning(vm)
	}
	sn, ok := in.m.(vmm.Snapshotter)
	if !ok {
		return nil, nil, notSupported(vm)
	}
	return in, pausing{sn, in}, nil
}

// isPaused is the error for an operation that needs the guest to run.
func isPaused(vm store.VM) error {
	return api.Conflictf("vm %s is paused: continue it with `banger vm resume %s`", vm.Name, vm.Name)
}

func notSupported(vm store.VM) error {
	return api.Invalidf("pause, save and snapshots are not supported by the %s driver (vm %s)", vm.VMM, vm.Name)
}

// Pause stops a running VM's vCPUs; its memory, devices and TAP stay.
// Pausing a paused VM is not an error.
func (s *Service) Pause(ctx context.Context, name string) (api.VM, error) {
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	_, sn, err := s.snapshotter(vm)
	if err != nil {
		return api.VM{}, err
	}
	if err := sn.Pause(ctx); err != nil {
		return api.VM{}, fmt.Errorf("pause %s: %w", vm.Name, err)
	}
	if err := s.Store.SetVMState(ctx, vm.ID, store.StatePaused, ""); err != nil {
		return api.VM{}, err
	}
	vm.State = store.StatePaused
	s.OnChange()
	return s.View(vm), nil
}

// Resume continues a paused VM and sets its clock (which stood still
// while it was paused). Resuming a running VM is not an error.
func (s *Service) Resume(ctx context.Context, name string, r progress.Reporter) (api.VM, error) {
	r = progress.Or(r)
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	if vm.State == store.StateSaved {
		return api.VM{}, api.Conflictf("vm %s is saved, not paused: continue it with `banger vm start %s`", vm.Name, vm.Name)
	}
	in, sn, err := s.snapshotter(vm)
	if err != nil {
		return api.VM{}, err
	}
	if err := sn.Resume(ctx); err != nil {
		return api.VM{}, fmt.Errorf("resume %s: %w", vm.Name, err)
	}
	if err := s.Store.SetVMState(ctx, vm.ID, store.StateRunning, ""); err != nil {
		return api.VM{}, err
	}
	vm.State = store.StateRunning
	s.afterResume(ctx, vm, in, false, r)
	s.OnChange()
	return s.View(vm), nil
}

// afterResume sets the guest's wall clock to the host's (the guest's
// stood still while paused or saved) and, after a restore, reseeds its
// RNG with 64 bytes of host entropy so that two restores of one snapshot
// do not share random numbers. An agent without these ops (older than
// issue 13) or one that does not answer gets a warning, not a failure:
// the VM runs.
func (s *Service) afterResume(ctx context.Context, vm store.VM, in *instance, reseed bool, r progress.Reporter) {
	ctx, cancel := context.WithTimeout(ctx, guestOpTimeout)
	defer cancel()
	warn := func(what string, err error) {
		s.Log.Warn(what, "vm", vm.Name, "err", err)
		progress.Stage(r, "guest", fmt.Sprintf("warning: %s: %v (the VM runs; its agent may be older than this banger)", what, err))
	}
	c, err := in.agentClient(ctx)
	if err != nil {
		warn("could not set the guest's clock", err)
		return
	}
	if err := s.GuestClock.SetTime(c, ctx, time.Now()); err != nil {
		warn("could not set the guest's clock", err)
	} else {
		progress.Stage(r, "guest", "guest clock set to the host's")
	}
	if !reseed {
		return
	}
	entropy := make([]byte, 64)
	if _, err := rand.Read(entropy); err != nil {
		warn("could not reseed the guest's RNG", err)
		return
	}
	if err := s.GuestClock.Reseed(c, ctx, entropy); err != nil {
		warn("could not reseed the guest's RNG", err)
	} else {
		progress.Stage(r, "guest", "guest RNG reseeded with host entropy")
	}
}

// resumeAfterError resumes a VM that an operation paused and that must go
// on running after that operation failed; it joins a resume failure to
// the operation's error.
func (s *Service) resumeAfterError(ctx context.Context, vm store.VM, in *instance, sn vmm.Snapshotter, opErr error, r progress.Reporter) error {
	if err := sn.Resume(ctx); err != nil {
		return errors.Join(opErr, fmt.Errorf("and resuming %s failed too (it is paused: `banger vm resume %s`): %w", vm.Name, vm.Name, err))
	}
	s.afterResume(ctx, vm, in, false, r)
	return opErr
}
