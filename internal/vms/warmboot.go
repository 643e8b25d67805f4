package vms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// warmStart is a template a boot restores (bootOpts.warm).
type warmStart struct {
	key  string
	meta warmMeta
}

// warmAgentTimeout bounds a warm start up to its identity applied; it
// takes about a second here, a cold boot 3–15 s. Past it the VM boots
// cold.
const warmAgentTimeout = 45 * time.Second

// bootNew makes a created VM's disks and boots it: warm from its key's
// template when there is one (and warm starts are on and not refused
// with --cold), else cold — and then, in the background, captures a
// template for the next create. A failed warm start leaves nothing
// behind: the VM gets fresh disks and boots cold, with one warning line.
// On a failure before the boot the VM is discarded.
func (s *Service) bootNew(ctx context.Context, vm *store.VM, plan BootPlan, p api.CreateParams, r progress.Reporter) error {
	if err := os.MkdirAll(s.dir(vm.ID).Path(), 0o700); err != nil {
		s.discard(ctx, *vm)
		return err
	}
	priv, pub, err := s.newHostKey(*vm)
	if err != nil {
		s.discard(ctx, *vm)
		return fmt.Errorf("host key: %w", err)
	}
	drv, key, spec := s.warmKeyFor(ctx, vm, plan, p, r)
	if key != "" {
		if dir, meta, ok := s.findTemplate(key); ok {
			err := s.bootWarm(ctx, vm, plan, p, dir, meta, priv, pub, r)
			if err == nil {
				return nil
			}
			why, _, _ := strings.Cut(err.Error(), "\n")
			progress.Stage(r, "boot", fmt.Sprintf("warning: warm start from snapshot %s failed (%s); booting cold", key[:12], why))
			s.Log.Warn("warm start failed; booting cold and retiring the template", "vm", vm.Name, "key", key[:12], "err", err)
			s.removeTemplate(key)
		} else {
			s.Log.Info("warm start: no template yet; booting cold", "vm", vm.Name, "key", key[:12])
		}
	}
	progress.Stage(r, "disks", fmt.Sprintf("overlay + work disk (%s, sparse)", config.FormatSize(vm.DiskBytes)))
	if err := s.makeDisks(ctx, *vm); err != nil {
		s.discard(ctx, *vm)
		return fmt.Errorf("prepare disks: %w", err)
	}
	if err := s.boot(ctx, vm, plan, p.WaitSSH, r); err != nil {
		return err
	}
	if key != "" {
		s.captureLater(drv, key, plan, *vm, spec)
	}
	return nil
}

// warmKeyFor is the template key of a VM about to boot, with its driver
// and machine, or "" when warm starts are off, refused (--cold) or the
// key cannot be had (logged).
func (s *Service) warmKeyFor(ctx context.Context, vm *store.VM, plan BootPlan, p api.CreateParams, r progress.Reporter) (vmm.Driver, string, vmm.Spec) {
	if p.Cold || !s.Config.WarmStarts() {
		return nil, "", vmm.Spec{}
	}
	drv, ok := s.Drivers.lookup(vm.VMM)
	if !ok {
		return nil, "", vmm.Spec{} // the boot reports it
	}
	spec, err := s.machineSpec(ctx, *vm, plan, r)
	key := ""
	if err == nil {
		key, err = s.warmKey(drv, plan, *vm, spec)
	}
	if err != nil {
		s.Log.Warn("warm start: no template key", "vm", vm.Name, "err", err)
		return nil, "", vmm.Spec{}
	}
	return drv, key, spec
}

// bootWarm starts a VM from the template in dir: its disks become copies
// of the template's (with the template's filesystem UUIDs, recorded), the
// template is restored with its memory file mapped privately, the clock
// set and the RNG reseeded, and the running guest gets the VM's identity
// over the agent as a fork's child does (reidentify, forkchild.go). On
// failure the copies are removed and the VM's own UUIDs restored.
func (s *Service) bootWarm(ctx context.Context, vm *store.VM, plan BootPlan, p api.CreateParams, dir string, meta warmMeta, priv, pub []byte, r progress.Reporter) (err error) {
	own := [2]string{vm.OverlayUUID, vm.WorkUUID}
	disks := s.dir(vm.ID).Disks()
	defer func() {
		if err != nil {
			for _, d := range disks {
				os.Remove(d)
			}
			vm.OverlayUUID, vm.WorkUUID = own[0], own[1]
			if uerr := s.Store.SetVMDiskUUIDs(context.WithoutCancel(ctx), vm.ID, own[0], own[1]); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
	}()
	progress.Stage(r, "disks", fmt.Sprintf("overlay + work disk (%s): copies of start-up snapshot %s's", config.FormatSize(vm.DiskBytes), meta.Key[:12]))
	for i, id := range []string{"overlay", "work"} {
		if err := s.copyDisk(disks[i], warmDisk(dir, id)); err != nil {
			return err
		}
	}
	if err := s.Store.SetVMDiskUUIDs(ctx, vm.ID, meta.OverlayUUID, meta.WorkUUID); err != nil {
		return err
	}
	vm.OverlayUUID, vm.WorkUUID = meta.OverlayUUID, meta.WorkUUID
	o := bootOpts{waitSSH: p.WaitSSH, restore: dir, warm: &warmStart{key: meta.Key, meta: meta},
		memory: vmm.MemorySpec{File: warmMem(dir)}, reseed: true,
		continued: func(in *instance) error { return s.reidentify(ctx, meta.MAC, *vm, in, priv, pub, r) }}
	return s.bootWith(ctx, vm, plan, o, r)
}

// startedFile records how a running VM started, in its runtime directory.
func (s *Service) startedFile(id string) string {
	return filepath.Join(s.dir(id).Runtime(), "started-from")
}

func (s *Service) markStarted(id, how string) {
	os.WriteFile(s.startedFile(id), []byte(how+"\n"), 0o600)
}

func (s *Service) startedFrom(id string) string {
	b, err := os.ReadFile(s.startedFile(id))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// captureLater captures key's template in the background, one capture at
// a time and at most maxCaptures times per key in this daemon's life.
func (s *Service) captureLater(drv vmm.Driver, key string, plan BootPlan, vm store.VM, spec vmm.Spec) {
	if vmmVersion(drv) == "" {
		return // a driver that cannot say which VMM wrote a state
	}
	s.warm.mu.Lock()
	if s.warm.attempts == nil {
		s.warm.attempts = map[string]int{}
	}
	if s.warm.busy || s.warm.attempts[key] >= maxCaptures {
		s.warm.mu.Unlock()
		return
	}
	s.warm.busy = true
	s.warm.attempts[key]++
	ctx, cancel := context.WithTimeout(context.Background(), s.Config.BootTimeout.Duration)
	s.warm.cancel = cancel
	s.warm.mu.Unlock()
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		defer func() {
			s.warm.mu.Lock()
			s.warm.busy, s.warm.cancel = false, nil
			s.warm.mu.Unlock()
		}()
		defer cancel()
		go func() {
			select {
			case <-s.stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
		start := time.Now()
		if err := s.capture(ctx, drv, key, plan, vm, spec); err != nil {
			s.Log.Warn("warm-start template capture failed", "key", key[:12], "image", plan.Image.Name, "err", err)
			return
		}
		s.Log.Info("warm-start template captured", "key", key[:12], "image", plan.Image.Name, "took", time.Since(start).Round(time.Millisecond))
	}()
}

// cancelCapture ends a running capture (daemon stop).
func (s *Service) cancelCapture() {
	s.warm.mu.Lock()
	defer s.warm.mu.Unlock()
	if s.warm.cancel != nil {
		s.warm.cancel()
	}
}
