package vms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vmm"
)

// `vm fork` (issue 14): running copies of a VM as of one instant. The
// instant (the fork point) is the parent's memory, devices and writable
// disks, captured as a snapshot is (captureInstant: the parent is paused
// only for the save and the disk copies) into a temporary directory
// beside its snapshots, or one of its snapshots (--from). Every child
// restores that state on its own TAP, with its own disks (copies of the
// fork point's), config drive, address and MAC, then gets its identity
// over the agent (reidentify, forkchild.go). The children are recorded
// in one transaction with pending marks (store.ReserveForks) before
// anything else is made; a child stops being pending once it is whole,
// and reconcile removes pending ones (forkreconcile.go).

// forkPoint is the state the children continue from.
type forkPoint struct {
	dir       string // state/ + the disk copies, as a snapshot directory
	temp      bool   // made for this fork: removed when it is done
	pausedFor time.Duration
	// state is the VMM state the children load: dir's state/, or the
	// template's with memory, its file (forkshare.go).
	state  string
	memory vmm.MemorySpec
	// mem is the daemon's memfd holding the parent's RAM as of the
	// instant, when it was copied (forkshare.go); memory names it.
	mem *os.File
}

// close drops the daemon's hold on the fork point's memory; the
// children's mappings keep their pages.
func (p forkPoint) close() {
	if p.mem != nil {
		p.mem.Close()
	}
}

// Fork makes p.Count running copies of a running or paused VM as of now,
// or of one of its snapshots (p.From). The parent keeps running (a
// paused parent stays paused). Limits are checked before anything is
// made; a failure removes every child this fork made.
func (s *Service) Fork(ctx context.Context, p api.ForkParams, r progress.Reporter) (api.ForkResult, error) {
	r = progress.Or(r)
	ctx = context.WithoutCancel(ctx)
	names, err := forkNames(p)
	if err != nil {
		return api.ForkResult{}, err
	}
	// The parent's lock is held throughout: it is neither stopped nor
	// deleted, nor its snapshot removed, while children load its state.
	parent, unlock, err := s.lockResolved(ctx, p.Name)
	if err != nil {
		return api.ForkResult{}, err
	}
	defer unlock()
	res := api.ForkResult{Parent: parent.Name, Snapshot: p.From, Children: []api.VM{}}
	if err := s.checkForkSource(ctx, parent, p.From); err != nil {
		return res, err
	}
	for _, n := range names {
		if _, err := s.Store.GetVM(ctx, n); err == nil {
			return res, api.Conflictf("a VM named %q already exists: pick other names with --name", n)
		}
	}
	if err := s.checkForkLimits(ctx, parent, len(names)); err != nil { // forklimits.go
		return res, err
	}
	kids := make([]store.VM, len(names))
	ptrs := make([]*store.VM, len(names))
	for i, n := range names {
		id := randHex(6)
		kids[i] = store.VM{ID: id, Name: n, Image: parent.Image, Kernel: parent.Kernel, VMM: parent.VMM,
			VCPU: parent.VCPU, MemoryMiB: parent.MemoryMiB, DiskBytes: parent.DiskBytes, MAC: macFor(id),
			// the disks are copies: their filesystems keep the parent's UUIDs
			OverlayUUID: parent.OverlayUUID, WorkUUID: parent.WorkUUID, State: store.StateCreating}
		ptrs[i] = &kids[i]
	}
	s.reserveMu.Lock()
	err = s.Store.ReserveForks(ctx, parent.ID, ptrs, s.Net.Subnet(), s.Net.Gateway())
	s.reserveMu.Unlock()
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return res, api.Conflictf("fork of %s: %v: pick other names with --name", parent.Name, err)
		}
		if errors.Is(err, store.ErrNoAddress) {
			return res, api.Conflictf("fork of %s: %v: delete VMs or fork fewer", parent.Name, err)
		}
		return res, err
	}
	progress.Stage(r, StageReserved, fmt.Sprintf("%d %s of %s reserved", len(kids), plural(len(kids), "child", "children"), parent.Name))
	dropAll := func(err error) (api.ForkResult, error) {
		for _, k := range kids {
			s.dropChild(ctx, k)
		}
		return res, fmt.Errorf("fork of %s: %w (no child was kept; %s)", parent.Name, err, parentState(parent))
	}
	point, err := s.forkPointOf(ctx, parent, p.From, r)
	if err != nil {
		return dropAll(err)
	}
	if point.temp {
		defer os.RemoveAll(point.dir)
	}
	defer point.close()
	res.PausedMillis = point.pausedFor.Milliseconds()
	if point.memory.File != "" {
		progress.Stage(r, "fork", "memory of the fork point copied from the parent's shared RAM into memory: the children map it privately (no template)")
	}
	point.state = vmdir.StateDir(point.dir)
	// A parent whose RAM was copied into the fork point's memory file
	// needs no template (forkPointOf); one child has no sibling to share
	// with (the parent's RAM is its own); a snapshot's directory is only
	// read.
	if point.temp && point.memory.File == "" && len(kids) > 1 {
		s.shareMemory(ctx, parent, &point, r) // forkshare.go
	}
	errs := make([]error, len(kids))
	var wg sync.WaitGroup
	for i := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.makeChild(ctx, parent, &kids[i], point, r) // forkchild.go
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return dropAll(err)
	}
	for _, k := range kids {
		res.Children = append(res.Children, s.View(k))
	}
	s.OnChange()
	return res, nil
}

// forkNames are the children's names: As with one child when given,
// else As-1 … As-N (As defaults to the parent's name + "-fork").
func forkNames(p api.ForkParams) ([]string, error) {
	if p.Count == 0 {
		p.Count = 1
	}
	if p.Count < 1 || p.Count > api.MaxForkCount {
		return nil, api.Invalidf("--count %d: a fork makes 1 to %d children", p.Count, api.MaxForkCount)
	}
	if p.Count == 1 && p.As != "" {
		if !dnsLabel.MatchString(p.As) {
			return nil, api.Invalidf("name %q is not a DNS label: use lowercase letters, digits and '-', at most 63, not starting or ending with '-'", p.As)
		}
		return []string{p.As}, nil
	}
	base := p.As
	if base == "" {
		base = p.Name + "-fork"
	}
	names := make([]string, p.Count)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", base, i+1)
		if !dnsLabel.MatchString(names[i]) {
			return nil, api.Invalidf("child name %q is not a DNS label: give a shorter --name of lowercase letters, digits and '-'", names[i])
		}
	}
	return names, nil
}

// checkForkSource refuses, before anything is made, a parent that cannot
// be forked: without --from it must run (or be paused) on a driver that
// can save its state; with --from the snapshot must exist, be complete
// and loadable into a machine of the parent's shape.
func (s *Service) checkForkSource(ctx context.Context, parent store.VM, from string) error {
	if from == "" {
		if s.instance(parent.ID) == nil {
			return api.Conflictf("vm %s is %s: a fork continues a running VM, so start it first (`banger vm start %s`), or fork one of its snapshots with --from", parent.Name, parent.State, parent.Name)
		}
		_, _, err := s.snapshotter(parent)
		return err
	}
	sn, err := s.snapshot(ctx, parent, from)
	if err != nil {
		return err
	}
	dir := s.dir(parent.ID).Snapshot(sn.Name)
	meta, err := readMeta(dir)
	if err == nil {
		err = s.checkRestorable(ctx, parent, meta, "snapshot "+sn.Name, "", "fork the running VM instead")
	}
	for _, f := range vmdir.SnapshotDisks(dir) {
		if _, serr := os.Stat(f); err == nil && serr != nil {
			err = fmt.Errorf("snapshot %s is incomplete: %v", sn.Name, serr)
		}
	}
	if err != nil {
		return api.Conflictf("cannot fork snapshot %s of vm %s: %v", sn.Name, parent.Name, err)
	}
	return nil
}

// forkPointOf captures the parent now, or names its snapshot.
func (s *Service) forkPointOf(ctx context.Context, parent store.VM, from string, r progress.Reporter) (forkPoint, error) {
	if from != "" {
		return forkPoint{dir: s.dir(parent.ID).Snapshot(from)}, nil
	}
	in, sn, err := s.snapshotter(parent)
	if err != nil {
		return forkPoint{}, err
	}
	// a *.tmp name: reconcile removes it after a daemon crash
	dir := s.dir(parent.ID).SnapshotTmp("fork-" + randHex(4))
	point := forkPoint{dir: dir, temp: true}
	if ms, ok := in.m.(vmm.MemorySaver); ok && ms.SharesMemory() {
		// The parent's RAM is host-readable shared memory: the instant
		// saves the devices only and copies the RAM into a memfd of the
		// daemon's, which the children map privately (forkshare.go).
		mem, err := newForkMemory(parent.Name)
		if err != nil {
			return forkPoint{}, err
		}
		point.mem, point.memory = mem, vmm.MemorySpec{File: fdPath(mem)}
		sn = memorySaver{sn, ms, mem}
	}
	progress.Stage(r, "fork", "pausing "+parent.Name+": saving memory and devices, copying disks")
	_, pausedFor, err := s.captureInstant(ctx, parent, in, sn, dir, r)
	if err != nil {
		point.close()
		return forkPoint{}, err
	}
	point.pausedFor = pausedFor
	return point, nil
}

func parentState(parent store.VM) string {
	if parent.State == store.StatePaused {
		return "vm " + parent.Name + " stays paused"
	}
	return "vm " + parent.Name + " keeps running"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
