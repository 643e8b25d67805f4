package vms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// A VMM is started before its handles.json is written (QEMU's start-up
// wait alone can take 15 s). A daemon that dies in between must not
// leave a VMM nobody knows of writing the VM's disks while the next
// `vm start` runs a second one on them. Three things close that window:
//
//   - intent: launch.json is written in the VM's runtime dir before the
//     VMM starts, and removed once handles.json is written;
//   - a marker: every VMM carries vmm.Marker(id) in its argv (and QEMU
//     writes a pidfile), so reconcile, `vm start` and `vm delete` find
//     and kill a VMM of the VM that the daemon does not manage;
//   - a lock: the VM's writable disks are flocked, and the lock is
//     inherited by the VMM process, so it lives exactly as long as the
//     VMM; a start while someone holds it is refused, naming the holder.

// strayVMMs returns the PIDs of processes carrying vm's marker, found
// through QEMU's pidfile and by scanning argv, other than except.
func (s *Service) strayVMMs(vm store.VM, except int) []int {
	marker := vmm.Marker(vm.ID)
	seen := map[int]bool{except: true}
	var pids []int
	if b, err := os.ReadFile(s.dir(vm.ID).QEMUPIDFile()); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && !seen[pid] && vmm.HasMarker(pid, marker) {
			seen[pid] = true
			pids = append(pids, pid)
		}
	}
	for _, pid := range vmm.FindMarked(marker) {
		if !seen[pid] {
			seen[pid] = true
			pids = append(pids, pid)
		}
	}
	return pids
}

// killStrays kills vm's VMM processes other than except (the one the
// daemon manages, or 0) and returns the PIDs it killed.
func (s *Service) killStrays(vm store.VM, except int) []int {
	pids := s.strayVMMs(vm, except)
	if len(pids) == 0 {
		return nil
	}
	s.Log.Warn("killing stray vmm", "vm", vm.Name, "pids", pids)
	if err := vmm.KillMarked(pids, vmm.Marker(vm.ID), 10*time.Second); err != nil {
		s.Log.Error("kill stray vmm", "vm", vm.Name, "err", err)
	}
	return pids
}

// lockDisks kills vm's stray VMMs, then locks its writable disks for the
// VMM about to start. A disk held by anyone else is a conflict naming the
// holder; the VM's recorded state is left as it was.
func (s *Service) lockDisks(vm store.VM, disks []vmm.Disk) ([]*os.File, error) {
	if pids := s.killStrays(vm, 0); len(pids) > 0 {
		s.Log.Warn("killed a vmm of this vm the daemon did not manage before starting a new one", "vm", vm.Name, "pids", pids)
	}
	files, err := vmm.LockDisks(disks)
	var busy *vmm.DiskBusyError
	if errors.As(err, &busy) {
		return nil, api.Conflictf("vm %s: %v: refusing to start a second VMM on it (a VMM banger does not manage? stop that process first)", vm.Name, busy)
	}
	return files, err
}

// reconcileStrays is reconcile's part: a VM whose VMM could not be
// re-attached (or that is recorded as stopped) may still have one,
// started by a daemon that died before writing handles.json. It is
// killed; the returned note says so for the VM's last error.
func (s *Service) reconcileStrays(ctx context.Context, vm store.VM) string {
	launching := s.dir(vm.ID).LaunchInProgress()
	killed := s.killStrays(vm, 0)
	if len(killed) == 0 {
		return ""
	}
	s.Log.Warn("reconcile: killed a vmm without handles", "vm", vm.Name, "pids", killed, "launch_in_progress", launching)
	return fmt.Sprintf("; its VMM (pid %v) was running without a record and was killed", strings.Trim(fmt.Sprint(killed), "[]"))
}
