package vms

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
)

// `vm stop --save` and the `vm start` that continues a saved VM.
//
// Save: pause → SaveState into saved.tmp/state → meta.json → rename
// saved.tmp to saved (the completion marker) → kill the VMM and free its
// TAP → state "saved". Any failure before the rename removes saved.tmp
// and resumes the VM (unless it was paused before): it keeps running.
//
// Start of a saved VM: the VMM starts from saved/state, paused; saved is
// renamed saved.old (a state is used once: after the guest continues, its
// disks move on); Resume, the agent, SetTime; saved.old is removed. A
// failure before the rename (the VMM could not load the state) leaves
// saved in place and the VM saved, its error offering --cold; after it,
// the VM is failed and boots from its disks.

// StopSave saves a running or paused VM's whole state to disk and ends
// its VMM.
func (s *Service) StopSave(ctx context.Context, name string, r progress.Reporter) (api.VM, error) {
	r = progress.Or(r)
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	if vm.State == store.StateSaved {
		return s.View(vm), nil // already saved: nothing to do
	}
	in, sn, err := s.snapshotter(vm)
	if err != nil {
		return api.VM{}, err
	}
	dir := s.dir(vm.ID)
	tmp := dir.SavedTmp()
	os.RemoveAll(dir.Saved()) // stale: this VM runs, so any saved state is not its
	os.RemoveAll(tmp)
	wasPaused := vm.State == store.StatePaused
	start := time.Now()
	if err := sn.Pause(ctx); err != nil {
		return api.VM{}, fmt.Errorf("pause %s: %w", vm.Name, err)
	}
	failed := func(err error) (api.VM, error) {
		os.RemoveAll(tmp)
		err = diskFull(tmp, err)
		if vmmExited(in, exitGrace) {
			err = s.vmmDied(ctx, vm, in, fmt.Errorf("save %s: %w (nothing was saved)", vm.Name, err))
			return api.VM{}, fmt.Errorf("%w: %s", err, stoppedHint(vm))
		}
		if wasPaused {
			return api.VM{}, err
		}
		return api.VM{}, s.resumeAfterError(ctx, vm, in, sn, fmt.Errorf("save %s: %w (the VM keeps running; nothing was saved)", vm.Name, err), r)
	}
	progress.Stage(r, "save", "writing the VM's memory and device state to "+dir.Saved())
	if err := os.MkdirAll(vmdir.StateDir(tmp), 0o700); err != nil {
		return failed(err)
	}
	st, err := sn.SaveState(ctx, vmdir.StateDir(tmp))
	if err != nil {
		return failed(err)
	}
	layout, err := s.layoutOf(ctx, vm)
	if err != nil {
		return failed(err)
	}
	meta := stateMeta{Created: time.Now().UTC(), VM: vm.ID, Driver: vm.VMM, VMMVersion: st.VMMVersion,
		BangerVersion: bangerVersion(), Layout: layout, Bytes: vmdir.Allocated(tmp)}
	if err := writeMeta(tmp, meta); err != nil {
		return failed(err)
	}
	if err := os.Rename(tmp, dir.Saved()); err != nil {
		return failed(err)
	}
	s.halt(ctx, vm, in)
	if err := s.Store.SetVMState(ctx, vm.ID, store.StateSaved, ""); err != nil {
		return api.VM{}, err
	}
	progress.Stage(r, "save", fmt.Sprintf("saved in %s (%s on disk); the VMM has exited", time.Since(start).Round(time.Millisecond), config.FormatSize(meta.Bytes)))
	s.OnChange()
	vm, err = s.Store.GetVM(ctx, vm.ID)
	return s.View(vm), err
}

// StartWith starts a VM: a saved one continues from its saved state
// (unless p.Cold), any other boots from its disks.
func (s *Service) StartWith(ctx context.Context, p api.StartParams, r progress.Reporter) (api.VM, error) {
	r = progress.Or(r)
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, p.Name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	if s.instance(vm.ID) != nil {
		if vm.State == store.StatePaused {
			return api.VM{}, api.Conflictf("vm %s is paused: continue it with `banger vm resume %s`", vm.Name, vm.Name)
		}
		return api.VM{}, api.Conflictf("vm %s is already running", vm.Name)
	}
	saved := s.dir(vm.ID).Saved()
	if vm.State == store.StateSaved && !p.Cold {
		if err := s.startSaved(ctx, &vm, r); err != nil {
			return api.VM{}, err
		}
		return s.View(vm), nil
	}
	if _, err := os.Stat(saved); err == nil {
		progress.Stage(r, "save", "discarding the saved state: booting from the disks")
		if err := os.RemoveAll(saved); err != nil {
			return api.VM{}, err
		}
	}
	if err := s.bootStored(ctx, &vm, true, r); err != nil {
		return api.VM{}, err
	}
	return s.View(vm), nil
}

// startSaved continues a saved VM. On an error the VM stays saved, with
// its state, unless the guest had already continued.
func (s *Service) startSaved(ctx context.Context, vm *store.VM, r progress.Reporter) error {
	dir := s.dir(vm.ID)
	saved, used := dir.Saved(), dir.SavedUsed()
	cold := fmt.Sprintf("boot it from its disks with `banger vm start --cold %s` (the processes it had are lost)", vm.Name)
	keep := func(err error) error {
		err = fmt.Errorf("cannot continue vm %s from its saved state: %w", vm.Name, err)
		s.Store.SetVMState(ctx, vm.ID, store.StateSaved, err.Error())
		vm.State, vm.LastError = store.StateSaved, err.Error()
		return api.Conflictf("%v", err)
	}
	meta, err := readMeta(saved)
	if err != nil {
		return keep(fmt.Errorf("%w: %s", err, cold))
	}
	if err := s.checkRestorable(ctx, *vm, meta, "the saved state", "", cold); err != nil {
		return keep(err)
	}
	plan, err := s.planFor(ctx, *vm)
	if err != nil {
		return keep(err)
	}
	os.RemoveAll(used)
	spent := false
	o := bootOpts{restore: vmdir.StateDir(saved), loaded: func() error {
		if err := os.Rename(saved, used); err != nil {
			return err
		}
		spent = true // from here on the saved state is spent
		return nil
	}}
	if err := s.bootWith(ctx, vm, plan, o, r); err != nil {
		if !spent {
			return keep(fmt.Errorf("%w (the state was written by %s %s): %s", err, meta.Driver, meta.VMMVersion, cold))
		}
		os.RemoveAll(used)
		if vm.State == store.StateStopped { // its VMM died (vmmdied.go)
			return fmt.Errorf("%w: the saved state was used up; %s", err, stoppedHint(*vm))
		}
		return err // the VM is failed; vm start boots it from its disks
	}
	if err := os.RemoveAll(used); err != nil {
		s.Log.Warn("remove used saved state", "vm", vm.Name, "err", err)
	}
	progress.Stage(r, "restore", "vm "+vm.Name+" continues where it was saved")
	return nil
}
