package vms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// warmStart is a template a boot restores (bootOpts.warm).
type warmStart struct {
	key  string
	meta warmMeta
}

// warmAgentTimeout bounds a warm start up to the agent's answer; it
// takes 1–3 s here, a cold boot 3–15 s. Past it the VM boots cold.
const warmAgentTimeout = 45 * time.Second

// continueEntropy is how much host entropy a warm clone gets.
const continueEntropy = 64

// bootNew boots a created VM: warm from its key's template when there is
// one (and warm starts are on and not refused with --cold), else cold —
// and then, in the background, captures a template for the next create.
// A failed warm start leaves nothing behind: the VM boots cold, with one
// warning line.
func (s *Service) bootNew(ctx context.Context, vm *store.VM, plan BootPlan, p api.CreateParams, r progress.Reporter) error {
	if p.Cold || !s.Config.WarmStarts() {
		return s.boot(ctx, vm, plan, p.WaitSSH, r)
	}
	drv, ok := s.Drivers.lookup(vm.VMM)
	if !ok {
		return s.boot(ctx, vm, plan, p.WaitSSH, r) // reports it
	}
	spec, err := s.machineSpec(ctx, *vm, plan, r)
	key := ""
	if err == nil {
		key, err = s.warmKey(drv, plan.Image.Name, spec)
	}
	if err != nil {
		s.Log.Warn("warm start: no template key", "vm", vm.Name, "err", err)
		return s.boot(ctx, vm, plan, p.WaitSSH, r)
	}
	if dir, meta, ok := s.findTemplate(key); ok {
		err := s.bootWith(ctx, vm, plan, bootOpts{waitSSH: p.WaitSSH, restore: dir, warm: &warmStart{key: key, meta: meta}}, r)
		if err == nil {
			return nil
		}
		why, _, _ := strings.Cut(err.Error(), "\n")
		progress.Stage(r, "boot", fmt.Sprintf("warning: warm start from snapshot %s failed (%s); booting cold", key[:12], why))
		s.Log.Warn("warm start failed; booting cold and retiring the template", "vm", vm.Name, "key", key[:12], "err", err)
		s.removeTemplate(key)
	}
	if err := s.boot(ctx, vm, plan, p.WaitSSH, r); err != nil {
		return err
	}
	s.captureLater(drv, key, plan.Image.Name, spec)
	return nil
}

// launchWarm starts the VMM from the template, resumes it and sends the
// continue message, then waits for the agent of the continuing boot.
func (s *Service) launchWarm(ctx context.Context, vm store.VM, drv vmm.Driver, spec vmm.Spec, w *warmStart, r progress.Reporter) (*instance, error) {
	progress.Stage(r, "boot", fmt.Sprintf("%s (%s), warm from start-up snapshot %s", drv.Name(), drv.Accel(), w.key[:12]))
	spec.Memory = vmm.MemorySpec{File: warmMem(spec.Restore)}
	spec.Cmdline = w.meta.Cmdline
	ctx, cancel := context.WithTimeout(ctx, warmAgentTimeout)
	defer cancel()
	in, err := s.launch(ctx, vm, drv, spec)
	if err != nil {
		return nil, err
	}
	sn, ok := in.m.(vmm.Snapshotter)
	if !ok {
		return in, notSupported(vm)
	}
	if err := sn.Resume(ctx); err != nil {
		return in, fmt.Errorf("resume: %w", err)
	}
	entropy := make([]byte, continueEntropy)
	if _, err := rand.Read(entropy); err != nil {
		return in, err
	}
	conn, err := in.m.DialAgent(ctx)
	if err != nil {
		return in, fmt.Errorf("reach guest agent: %w", err)
	}
	// The continue line goes first on the raw channel; the handshake
	// that follows on the same connection reaches the agent once the
	// continuing boot serves it (HELLO is repeated until then).
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(proto.Continue{Time: time.Now(), Entropy: entropy}.Line()); err != nil {
		conn.Close()
		return in, fmt.Errorf("send the continue message: %w", err)
	}
	conn.SetWriteDeadline(time.Time{})
	c, err := client.Connect(ctx, conn)
	if err != nil {
		return in, s.bootError(vm, fmt.Sprintf("the guest agent did not answer after the continue message: %v", err))
	}
	in.setAgent(c)
	if _, err := c.Ping(ctx); err != nil {
		return in, err
	}
	s.markStarted(vm.ID, "snapshot "+w.key[:12])
	return in, nil
}

func (in *instance) setAgent(c *client.Client) {
	in.agentMu.Lock()
	defer in.agentMu.Unlock()
	if in.agent != nil {
		in.agent.Close()
	}
	in.agent = c
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
func (s *Service) captureLater(drv vmm.Driver, key, image string, spec vmm.Spec) {
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
		if err := s.capture(ctx, drv, key, image, spec); err != nil {
			s.Log.Warn("warm-start template capture failed", "key", key[:12], "image", image, "err", err)
			return
		}
		s.Log.Info("warm-start template captured", "key", key[:12], "image", image, "took", time.Since(start).Round(time.Millisecond))
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

// capture boots a template VMM with the VM's device set — its own scratch
// disks and config drive (the guest reads none of them before the
// snapshot point), the shared image and modules, a TAP of its own — up to
// the snapshot point, saves it with its memory in a shared file, and
// ends it. The directory gets its final name only when complete.
func (s *Service) capture(ctx context.Context, drv vmm.Driver, key, image string, vmSpec vmm.Spec) (err error) {
	final := s.warmDir(key)
	tmp := final + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	id := "warm-" + key[:12]
	rt := filepath.Join(s.Paths.RuntimeDir, id)
	os.RemoveAll(rt)
	defer os.RemoveAll(rt)
	spec := vmm.Spec{ID: id, Name: id, Dir: rt, VCPU: vmSpec.VCPU, MemoryMiB: vmSpec.MemoryMiB,
		Kernel: vmSpec.Kernel, KernelELF: vmSpec.KernelELF, Initrd: vmSpec.Initrd,
		Cmdline: snapWaitCmdline(vmSpec.Cmdline), ConsoleLog: filepath.Join(tmp, "console.log"),
		Memory: vmm.MemorySpec{File: warmMem(tmp), Shared: true}}
	for _, d := range vmSpec.Disks {
		if d.ReadOnly && d.ID != "config" {
			spec.Disks = append(spec.Disks, d)
			continue
		}
		p := filepath.Join(tmp, "scratch-"+d.ID)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return err
		}
		if err := os.Truncate(p, 1<<20); err != nil {
			return err
		}
		spec.Disks = append(spec.Disks, vmm.Disk{ID: d.ID, Path: p, ReadOnly: d.ReadOnly})
	}
	if vmSpec.Net != nil {
		tap := "bgtw" + key[:11]
		if err := s.Net.CreateTAP(ctx, tap); err != nil {
			return fmt.Errorf("tap: %w", err)
		}
		defer s.Net.DeleteTAP(context.WithoutCancel(ctx), tap)
		spec.Net = &vmm.NetIface{TAP: tap, MAC: macFor(id)}
	}
	m, err := drv.Start(ctx, spec)
	if err != nil {
		return err
	}
	defer m.Kill()
	sn, ok := m.(vmm.Snapshotter)
	if !ok {
		return errors.New("the vmm cannot save a machine's state")
	}
	if err := waitSnapPoint(ctx, m, spec.ConsoleLog); err != nil {
		return err
	}
	if err := sn.Pause(ctx); err != nil {
		return err
	}
	st, err := sn.SaveState(ctx, tmp)
	if err != nil {
		return err
	}
	// The memory file is the snapshot: the template never runs again.
	m.Kill()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		return errors.New("the template vmm did not exit")
	}
	for _, d := range spec.Disks {
		if strings.HasPrefix(d.Path, tmp) {
			os.Remove(d.Path)
		}
	}
	meta, _ := json.MarshalIndent(warmMeta{Format: warmFormat, Key: key, Image: image, Driver: st.Driver,
		VMMVersion: st.VMMVersion, CreatedAt: time.Now().UTC(), Cmdline: spec.Cmdline}, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), meta, 0o600); err != nil {
		return err
	}
	os.RemoveAll(final) // a template that failed a start
	return os.Rename(tmp, final)
}

// waitSnapPoint waits until the console shows the agent's snapshot-point
// marker.
func waitSnapPoint(ctx context.Context, m vmm.Machine, console string) error {
	for {
		if b, err := os.ReadFile(console); err == nil && strings.Contains(string(b), proto.SnapPointMarker) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the template did not reach the snapshot point: %w", ctx.Err())
		case <-m.Done():
			b, _ := os.ReadFile(console)
			return fmt.Errorf("the template vmm exited before the snapshot point: %s", lastLinesOf(string(b), 5))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
