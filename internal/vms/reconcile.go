package vms

import (
	"context"
	"os"
	"time"

	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// Reconcile rebuilds in-memory state from the store and the host after a
// daemon start: VMs whose VMM still runs are re-attached (and keep
// running); the others are marked stopped and their host resources
// released. Interrupted creates are marked failed. Saved states and
// snapshots are reconciled too (reconcileSaved).
func (s *Service) Reconcile(ctx context.Context) {
	vms, err := s.Store.ListVMs(ctx)
	if err != nil {
		s.Log.Error("reconcile: list vms", "err", err)
		return
	}
	s.endTemplateVMMs("fork-*") // forkshare.go
	pending, err := s.Store.PendingForks(ctx)
	if err != nil {
		s.Log.Error("reconcile: list unfinished forks", "err", err)
	}
	for _, vm := range vms {
		if s.reconcileFork(ctx, vm, pending) { // forkreconcile.go
			continue
		}
		s.reconcileSaved(ctx, vm)
		s.reconcileVM(ctx, vm)
	}
	s.PruneTemplates(ctx) // warm.go
	s.OnChange()
}

func (s *Service) reconcileVM(ctx context.Context, vm store.VM) {
	switch vm.State {
	case store.StateStopped, store.StateFailed, store.StateSaved:
		// a saved VM stays saved; a missing state is reported by vm start
		s.reconcileStrays(ctx, vm) // strays.go
		return
	}
	saved := s.dir(vm.ID).Saved()
	_, statErr := os.Stat(saved)
	hasSaved := statErr == nil
	h, err := s.dir(vm.ID).ReadHandles()
	drv, ok := s.Drivers.lookup(vm.VMM)
	if err == nil && ok {
		if m, err := drv.Attach(h); err == nil {
			s.killStrays(vm, h.PID) // a second VMM on the same disks
			in := &instance{m: m}
			in.paused.Store(vm.State == store.StatePaused)
			s.setInstance(vm.ID, in)
			if hasSaved {
				// A daemon that died between a save's completion and the
				// VMM's end, or between a restore's load and its resume:
				// the live VMM wins and the saved state goes (its disks
				// move on with the running guest).
				os.RemoveAll(saved)
			}
			// A paused VM stays paused: the row is trusted (QEMU and
			// Firecracker keep a paused VM paused when the daemon dies).
			// Any other live VMM may have been paused by an operation
			// the daemon did not finish (save, snapshot, restore): it is
			// resumed (idempotent) and recorded running.
			if vm.State != store.StatePaused {
				if sn, ok := m.(vmm.Snapshotter); ok {
					rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					if err := sn.Resume(rctx); err != nil {
						s.Log.Warn("reconcile: resume", "vm", vm.Name, "err", err)
					}
					cancel()
				}
				if vm.State != store.StateRunning {
					s.Store.SetVMState(ctx, vm.ID, store.StateRunning, "")
				}
			}
			s.startWatch(vm.ID, in)
			if err := s.applyNet(ctx, vm); err != nil { // netpolicy.go
				s.Log.Warn("reconcile: network policy", "vm", vm.Name, "err", err)
			}
			s.startForwards(ctx, vm) // forward.go
			s.Log.Info("reconcile: re-attached", "vm", vm.Name, "pid", h.PID)
			return
		}
	}
	stray := s.reconcileStrays(ctx, vm)
	s.halt(ctx, vm, nil)
	state, why := store.StateStopped, "the VMM was gone when the daemon started"
	if vm.State == store.StateCreating || vm.State == store.StateStarting {
		state, why = store.StateFailed, "the daemon stopped while the VM was "+vm.State
	}
	if hasSaved {
		// the save completed and the VMM ended, but the daemon died
		// before recording it
		state, why = store.StateSaved, ""
	}
	if stray != "" && state == store.StateStopped {
		why = "the daemon could not re-attach the VMM"
	}
	why += stray
	s.Store.SetVMState(ctx, vm.ID, state, why)
	s.Log.Info("reconcile: marked", "vm", vm.Name, "state", state)
}

// reconcileSaved removes half-written saved states and snapshots (still
// named *.tmp: their rename, the completion marker, never happened) and a
// used saved state (saved.old), records a complete snapshot whose row was
// not inserted, and forgets rows whose files are gone.
func (s *Service) reconcileSaved(ctx context.Context, vm store.VM) {
	dir := s.dir(vm.ID)
	for _, p := range []string{dir.SavedTmp(), dir.SavedUsed()} {
		if _, err := os.Stat(p); err == nil {
			s.Log.Info("reconcile: removing a half-written or used saved state", "vm", vm.Name, "dir", p)
			os.RemoveAll(p)
		}
	}
	rows, err := s.Store.ListSnapshots(ctx, vm.ID)
	if err != nil {
		s.Log.Warn("reconcile: list snapshots", "vm", vm.Name, "err", err)
		return
	}
	known := map[string]bool{}
	for _, sn := range rows {
		known[sn.Name] = true
		if _, err := os.Stat(dir.Snapshot(sn.Name)); os.IsNotExist(err) {
			s.Log.Warn("reconcile: snapshot files gone; forgetting it", "vm", vm.Name, "snapshot", sn.Name)
			s.Store.DeleteSnapshot(ctx, vm.ID, sn.Name)
		}
	}
	entries, _ := os.ReadDir(dir.Snapshots())
	for _, e := range entries {
		p := dir.Snapshot(e.Name())
		if known[e.Name()] {
			continue
		}
		if !dnsLabel.MatchString(e.Name()) { // *.tmp, *.restore: half-written
			s.Log.Info("reconcile: removing a half-written snapshot", "vm", vm.Name, "dir", p)
			os.RemoveAll(p)
			continue
		}
		meta, err := readMeta(p)
		if err == nil {
			err = s.Store.PutSnapshot(ctx, rowOf(vm.ID, e.Name(), meta))
		}
		if err != nil {
			s.Log.Warn("reconcile: removing an unrecorded snapshot", "vm", vm.Name, "dir", p, "err", err)
			os.RemoveAll(p)
		}
	}
	for _, d := range dir.Disks() {
		os.Remove(d + ".restore")
	}
}
