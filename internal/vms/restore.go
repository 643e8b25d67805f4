package vms

import (
	"context"
	"fmt"
	"os"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
)

// SnapshotRestore takes a VM back to a snapshot: its memory, processes
// and disks. A running, paused or saved VM is refused unless p.Force,
// which ends its VMM at once (its current state is lost) and discards a
// saved state. Then the snapshot's disks are copied over the VM's, the
// VMM starts from the snapshot's state, and the VM is resumed, its clock
// set and its RNG reseeded. The snapshot stays, restorable again.
func (s *Service) SnapshotRestore(ctx context.Context, p api.SnapshotParams, r progress.Reporter) (api.VM, error) {
	r = progress.Or(r)
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, p.Name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	sn, err := s.snapshot(ctx, vm, p.Snapshot)
	if err != nil {
		return api.VM{}, err
	}
	dir := s.dir(vm.ID)
	src := dir.Snapshot(sn.Name)
	rm := fmt.Sprintf("remove it with `banger vm snapshot rm %s %s`", vm.Name, sn.Name)
	meta, err := readMeta(src)
	if err != nil {
		return api.VM{}, api.Conflictf("snapshot %s of vm %s cannot be restored: %v: %s", sn.Name, vm.Name, err, rm)
	}
	if err := s.checkRestorable(ctx, vm, meta, "snapshot "+sn.Name, "this snapshot can only be restored by %s", rm+" (it cannot be restored into this VM as it is)"); err != nil {
		return api.VM{}, api.Conflictf("%v", err)
	}
	for _, f := range vmdir.SnapshotDisks(src) {
		if _, err := os.Stat(f); err != nil {
			return api.VM{}, api.Conflictf("snapshot %s of vm %s is incomplete (%v): %s", sn.Name, vm.Name, err, rm)
		}
	}
	in := s.instance(vm.ID)
	if (in != nil || vm.State == store.StateSaved) && !p.Force {
		return api.VM{}, api.Conflictf("vm %s is %s: restoring snapshot %s replaces its memory and disks; add --force to end its current state (`banger vm snapshot create %s` first keeps it)",
			vm.Name, vm.State, sn.Name, vm.Name)
	}
	// The copies are made beside the VM's disks first: a failure (a full
	// disk) leaves the VM as it was, running or not.
	progress.Stage(r, "restore", "copying snapshot "+sn.Name+"'s disks")
	disks := dir.Disks()
	for i, dst := range disks {
		if err := s.copyDisk(dst+".restore", vmdir.SnapshotDisks(src)[i]); err != nil {
			for _, d := range disks {
				os.Remove(d + ".restore")
			}
			return api.VM{}, fmt.Errorf("restore %s: %w (the VM and its disks are unchanged)", vm.Name, err)
		}
	}
	if in != nil {
		progress.Stage(r, "stop", "ending vm "+vm.Name+"'s VMM (--force)")
		s.halt(ctx, vm, in)
	}
	if err := os.RemoveAll(dir.Saved()); err != nil {
		return api.VM{}, err
	}
	if in != nil || vm.State == store.StateSaved {
		s.Store.SetVMState(ctx, vm.ID, store.StateStopped, "")
		vm.State = store.StateStopped
	}
	for _, dst := range disks {
		if err := os.Rename(dst+".restore", dst); err != nil {
			return api.VM{}, err
		}
	}
	plan, err := s.planFor(ctx, vm)
	if err != nil {
		return api.VM{}, err
	}
	if err := s.bootWith(ctx, &vm, plan, bootOpts{restore: vmdir.StateDir(src), reseed: true}, r); err != nil {
		return api.VM{}, fmt.Errorf("%w (the snapshot was written by %s %s; the VM's disks are now the snapshot's: `banger vm start %s` boots them, or restore again)",
			err, meta.Driver, meta.VMMVersion, vm.Name)
	}
	progress.Stage(r, "restore", "vm "+vm.Name+" is back at snapshot "+sn.Name+" ("+sn.CreatedAt.Format("2006-01-02 15:04:05")+")")
	return s.View(vm), nil
}
