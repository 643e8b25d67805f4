package vms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/suggest"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vmm"
)

// `vm snapshot create|ls|restore|rm`. A snapshot is the VM's memory,
// devices and writable disks (overlay, work) at one instant, in
// snapshots/<name>/ of the VM's directory: written as <name>.tmp while
// the VM is paused, renamed when complete, then recorded in the store.

// SnapshotCreate snapshots a running or paused VM. A running VM is paused
// only for the save and the disk copies, then resumed (its clock set).
// On any error the partial snapshot is removed and the VM keeps running.
func (s *Service) SnapshotCreate(ctx context.Context, p api.SnapshotParams, r progress.Reporter) (api.Snapshot, error) {
	r = progress.Or(r)
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, p.Name)
	if err != nil {
		return api.Snapshot{}, err
	}
	defer unlock()
	name, err := s.snapshotName(ctx, vm, p.Snapshot)
	if err != nil {
		return api.Snapshot{}, err
	}
	if s.instance(vm.ID) == nil {
		return api.Snapshot{}, api.Conflictf("vm %s is %s: a snapshot needs its memory, so start it first (`banger vm start %s`); a stopped VM's disks can be kept with `banger image promote %s`", vm.Name, vm.State, vm.Name, vm.Name)
	}
	in, sn, err := s.snapshotter(vm)
	if err != nil {
		return api.Snapshot{}, err
	}
	dir := s.dir(vm.ID)
	tmp, final := dir.SnapshotTmp(name), dir.Snapshot(name)
	layout, err := s.layoutOf(ctx, vm)
	if err != nil {
		return api.Snapshot{}, err
	}
	progress.Stage(r, "snapshot", "saving memory and devices, copying disks")
	st, _, err := s.captureInstant(ctx, vm, in, sn, tmp, r)
	if err != nil {
		return api.Snapshot{}, fmt.Errorf("snapshot %s of vm %s: %w", name, vm.Name, err)
	}
	meta := stateMeta{Created: time.Now().UTC(), VM: vm.ID, Driver: vm.VMM, VMMVersion: st.VMMVersion,
		BangerVersion: bangerVersion(), Layout: layout}
	meta.Bytes = vmdir.Allocated(tmp)
	if err := writeMeta(tmp, meta); err != nil {
		os.RemoveAll(tmp)
		return api.Snapshot{}, diskFull(tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return api.Snapshot{}, err
	}
	row := rowOf(vm.ID, name, meta)
	if err := s.Store.PutSnapshot(ctx, row); err != nil {
		os.RemoveAll(final)
		return api.Snapshot{}, err
	}
	return viewSnapshot(vm, row), nil
}

// snapshotName checks a requested name, or makes one from the time.
func (s *Service) snapshotName(ctx context.Context, vm store.VM, name string) (string, error) {
	if name == "" {
		base := time.Now().UTC().Format("20060102-150405")
		name = base
		for i := 2; ; i++ {
			if _, err := s.Store.GetSnapshot(ctx, vm.ID, name); errors.Is(err, store.ErrNotFound) {
				return name, nil
			}
			name = fmt.Sprintf("%s-%d", base, i)
		}
	}
	if !dnsLabel.MatchString(name) {
		return "", api.Invalidf("snapshot name %q is not a DNS label: use lowercase letters, digits and '-', at most 63, not starting or ending with '-'", name)
	}
	if _, err := s.Store.GetSnapshot(ctx, vm.ID, name); err == nil {
		return "", api.Conflictf("vm %s already has a snapshot %s: pick another name, or remove it first (`banger vm snapshot rm %s %s`)", vm.Name, name, vm.Name, name)
	}
	return name, nil
}

func rowOf(vmID, name string, m stateMeta) store.Snapshot {
	return store.Snapshot{VMID: vmID, Name: name, CreatedAt: m.Created, Bytes: m.Bytes, VMM: m.Driver,
		VMMVersion: m.VMMVersion, BangerVersion: m.BangerVersion, Layout: m.Layout}
}

func viewSnapshot(vm store.VM, sn store.Snapshot) api.Snapshot {
	return api.Snapshot{VM: vm.Name, Name: sn.Name, CreatedAt: sn.CreatedAt, Bytes: sn.Bytes, VMM: sn.VMM,
		VMMVersion: sn.VMMVersion, BangerVersion: sn.BangerVersion, Layout: sn.Layout}
}

// SnapshotList lists a VM's snapshots, oldest first.
func (s *Service) SnapshotList(ctx context.Context, name string) ([]api.Snapshot, error) {
	vm, err := s.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	rows, err := s.Store.ListSnapshots(ctx, vm.ID)
	out := []api.Snapshot{}
	for _, sn := range rows {
		out = append(out, viewSnapshot(vm, sn))
	}
	return out, err
}

// snapshot finds one of a VM's snapshots, suggesting names on a miss.
func (s *Service) snapshot(ctx context.Context, vm store.VM, name string) (store.Snapshot, error) {
	if name == "" {
		return store.Snapshot{}, api.Invalidf("a snapshot name is required (`banger vm snapshot ls %s` lists them)", vm.Name)
	}
	sn, err := s.Store.GetSnapshot(ctx, vm.ID, name)
	if !errors.Is(err, store.ErrNotFound) {
		return sn, err
	}
	rows, _ := s.Store.ListSnapshots(ctx, vm.ID)
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Name
	}
	return sn, api.NotFoundf("vm %s has no snapshot %q%s", vm.Name, name,
		suggest.Hint(name, names, fmt.Sprintf("`banger vm snapshot ls %s` lists them", vm.Name)))
}

// SnapshotDelete removes one snapshot, files and record.
func (s *Service) SnapshotDelete(ctx context.Context, p api.SnapshotParams) (api.Snapshot, error) {
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, p.Name)
	if err != nil {
		return api.Snapshot{}, err
	}
	defer unlock()
	sn, err := s.snapshot(ctx, vm, p.Snapshot)
	if err != nil {
		return api.Snapshot{}, err
	}
	if err := os.RemoveAll(s.dir(vm.ID).Snapshot(sn.Name)); err != nil {
		return api.Snapshot{}, err
	}
	return viewSnapshot(vm, sn), s.Store.DeleteSnapshot(ctx, vm.ID, sn.Name)
}

// captureInstant writes vm's memory, devices and writable disks at one instant
// into dir (state/ and the disk copies; a snapshot's layout): the VM is
// paused for the save and the copies, then resumed (its clock set) unless
// it was paused already. On any error dir is removed and the VM keeps
// running (or is stopped, when its VMM died meanwhile). pausedFor is how
// long the vCPUs stood still (0 for a VM that was paused).
func (s *Service) captureInstant(ctx context.Context, vm store.VM, in *instance, sn vmm.Snapshotter, dir string, r progress.Reporter) (st vmm.SavedState, pausedFor time.Duration, err error) {
	os.RemoveAll(dir)
	wasPaused := vm.State == store.StatePaused
	failed := func(err error) (vmm.SavedState, time.Duration, error) {
		os.RemoveAll(dir)
		err = fmt.Errorf("%w (nothing was kept)", diskFull(dir, err))
		if vmmExited(in, exitGrace) {
			return st, 0, fmt.Errorf("%w: %s", s.vmmDied(ctx, vm, in, err), stoppedHint(vm))
		}
		if wasPaused {
			return st, 0, err
		}
		return st, 0, s.resumeAfterError(ctx, vm, in, sn, err, r)
	}
	if err := os.MkdirAll(vmdir.StateDir(dir), 0o700); err != nil {
		return st, 0, diskFull(dir, err)
	}
	paused := time.Now()
	if err := sn.Pause(ctx); err != nil {
		os.RemoveAll(dir)
		return st, 0, fmt.Errorf("pause %s: %w", vm.Name, err)
	}
	if st, err = sn.SaveState(ctx, vmdir.StateDir(dir)); err != nil {
		return failed(err)
	}
	for i, src := range s.dir(vm.ID).Disks() {
		if err := s.copyDisk(vmdir.SnapshotDisks(dir)[i], src); err != nil {
			return failed(err)
		}
	}
	if wasPaused {
		return st, 0, nil
	}
	if err := sn.Resume(ctx); err != nil {
		return failed(fmt.Errorf("resume: %w", err))
	}
	pausedFor = time.Since(paused)
	progress.Stage(r, "snapshot", fmt.Sprintf("vm %s was paused for %s", vm.Name, pausedFor.Round(time.Millisecond)))
	s.afterResume(ctx, vm, in, false, r)
	return st, pausedFor, nil
}
