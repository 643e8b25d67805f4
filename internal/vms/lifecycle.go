package vms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// Restart stops (gracefully) and boots a VM under one lock, so no other
// operation on it can slip in between.
func (s *Service) Restart(ctx context.Context, name string, r progress.Reporter) (api.VM, error) {
	r = progress.Or(r)
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	if s.instance(vm.ID) != nil {
		progress.Stage(r, "stop", "shutting down "+vm.Name)
		if err := s.stopVM(ctx, vm); err != nil {
			return api.VM{}, err
		}
	}
	if vm.State == store.StateSaved {
		// a restart boots afresh: the saved state would not match the disks
		progress.Stage(r, "stop", "discarding "+vm.Name+"'s saved state")
		if err := os.RemoveAll(s.dir(vm.ID).Saved()); err != nil {
			return api.VM{}, err
		}
	}
	if err := s.bootStored(ctx, &vm, true, r); err != nil {
		return api.VM{}, err
	}
	return s.View(vm), nil
}

// bootStored boots an existing VM: its plan comes from its recorded
// image and kernel. The caller holds the VM's lock.
func (s *Service) bootStored(ctx context.Context, vm *store.VM, waitSSH bool, r progress.Reporter) error {
	plan, err := s.planFor(ctx, *vm)
	if err != nil {
		vm.State, vm.LastError = store.StateFailed, err.Error()
		s.Store.SetVMState(context.WithoutCancel(ctx), vm.ID, store.StateFailed, err.Error())
		return err
	}
	return s.boot(ctx, vm, plan, waitSSH, r)
}

// Set resizes a stopped VM. Disks only grow: shrinking a filesystem that
// holds the user's data is refused rather than risked.
func (s *Service) Set(ctx context.Context, p api.SetParams, r progress.Reporter) (api.VM, error) {
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, p.Name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	if s.instance(vm.ID) != nil {
		return api.VM{}, api.Conflictf("vm %s is running: stop it first (`banger vm stop %s`), then set its size", vm.Name, vm.Name)
	}
	if vm.State == store.StateSaved {
		return api.VM{}, api.Conflictf("vm %s is saved, and its saved state needs the sizes it was saved with: continue it and stop it first (`banger vm start %s && banger vm stop %s`), or discard the state with `banger vm start --cold %s`", vm.Name, vm.Name, vm.Name, vm.Name)
	}
	spec := config.Spec{VCPU: vm.VCPU, MemoryMiB: vm.MemoryMiB, DiskBytes: vm.DiskBytes}
	if p.VCPU != 0 {
		spec.VCPU = p.VCPU
	}
	if p.MemoryMiB != 0 {
		spec.MemoryMiB = p.MemoryMiB
	}
	if p.DiskSize != "" {
		n, err := config.ParseSize(p.DiskSize)
		if err != nil {
			return api.VM{}, api.Invalidf("--disk-size: %v", err)
		}
		if n < vm.DiskBytes {
			return api.VM{}, api.Invalidf("--disk-size %s is smaller than the current %s: disks can only grow",
				config.FormatSize(n), config.FormatSize(vm.DiskBytes))
		}
		spec.DiskBytes = n
	}
	if err := spec.Validate(); err != nil {
		return api.VM{}, api.Invalidf("%v", err)
	}
	if spec.DiskBytes > vm.DiskBytes {
		progress.Stage(r, "disks", "growing overlay and work disks to "+config.FormatSize(spec.DiskBytes)+" (the guest grows their filesystems at its next boot)")
		for _, disk := range s.dir(vm.ID).Disks() {
			if err := growDisk(disk, spec.DiskBytes); err != nil {
				return api.VM{}, err
			}
		}
	}
	if err := s.Store.SetVMSize(ctx, vm.ID, spec.VCPU, spec.MemoryMiB, spec.DiskBytes); err != nil {
		return api.VM{}, err
	}
	vm, err = s.Store.GetVM(ctx, vm.ID)
	return s.View(vm), err
}

// growDisk extends a sparse disk file; nothing else. The filesystem on it
// was written by the guest, so the host never parses it (no e2fsck or
// resize2fs here): the guest agent grows it online at the next boot
// (agent/growfs_linux.go, EXT4_IOC_RESIZE_FS).
func growDisk(path string, size int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("grow %s: %w", filepath.Base(path), err)
	}
	if fi.Size() >= size {
		return nil
	}
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("grow %s: %w", filepath.Base(path), err)
	}
	return nil
}

// startWatch runs watch for a VM until its VMM exits or the daemon stops.
func (s *Service) startWatch(id string, in *instance) {
	s.watchWG.Add(1)
	go func() {
		defer s.watchWG.Done()
		s.watch(id, in)
	}()
}

// watch notices a VMM that exits on its own (guest poweroff, crash) and
// releases its host resources.
func (s *Service) watch(id string, in *instance) {
	select {
	case <-in.m.Done():
	case <-s.stopping:
		return // the daemon is exiting; the VM keeps running
	}
	lock := s.lockVM(id)
	lock.Lock()
	defer lock.Unlock()
	if s.instance(id) != in {
		return // stopped or restarted by someone else
	}
	ctx := context.Background()
	vm, err := s.Store.GetVM(ctx, id)
	if err != nil {
		s.setInstance(id, nil)
		return
	}
	s.Log.Info("vm exited on its own", "vm", vm.Name)
	s.halt(ctx, vm, in)
	s.Store.SetVMState(ctx, id, store.StateStopped, "the VM powered off or its VMM exited")
	s.OnChange()
}

// halt stops a VM's VMM at once and releases its host resources (the
// caller records the new state). Used on failures and for teardown.
func (s *Service) halt(ctx context.Context, vm store.VM, in *instance) {
	if in != nil {
		in.closeAgent()
		if err := in.m.Kill(); err != nil {
			s.Log.Warn("kill vmm", "vm", vm.Name, "err", err)
		}
	}
	s.killStrays(vm, 0)   // one started by a daemon that died before recording it
	s.stopForwards(vm.ID) // forward.go
	s.setInstance(vm.ID, nil)
	if err := s.Net.DeleteTAP(ctx, TAPName(vm.ID)); err != nil {
		s.Log.Warn("delete tap", "vm", vm.Name, "err", err)
	}
	os.RemoveAll(s.dir(vm.ID).Runtime())
}

// stopVM shuts the guest down gracefully (agent, then ACPI), waits a
// bounded time, then kills. The caller holds the VM's lock.
func (s *Service) stopVM(ctx context.Context, vm store.VM) error {
	in := s.instance(vm.ID)
	if in == nil {
		return s.Store.SetVMState(ctx, vm.ID, store.StateStopped, "")
	}
	if sn, ok := in.m.(vmm.Snapshotter); ok && vm.State == store.StatePaused {
		// a paused guest cannot shut down: let it run to do so
		if err := (pausing{sn, in}).Resume(ctx); err != nil {
			s.Log.Warn("resume before stop", "vm", vm.Name, "err", err)
		}
	}
	s.Store.SetVMState(ctx, vm.ID, store.StateStopping, "")
	graceful := func() bool {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if c, err := in.agentClient(actx); err == nil && c.Shutdown(actx) == nil {
			select {
			case <-in.m.Done():
				return true
			case <-time.After(30 * time.Second):
			}
		}
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		return in.m.Shutdown(sctx) == nil
	}
	if !graceful() {
		s.Log.Warn("graceful stop failed; killing", "vm", vm.Name)
	}
	s.halt(ctx, vm, in)
	defer s.OnChange()
	return s.Store.SetVMState(ctx, vm.ID, store.StateStopped, "")
}
