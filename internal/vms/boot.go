package vms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// boot starts a prepared VM from its plan and waits for its agent (and
// sshd when waitSSH). The caller holds the VM's lock.
func (s *Service) boot(ctx context.Context, vm *store.VM, plan BootPlan, waitSSH bool, r progress.Reporter) error {
	return s.bootWith(ctx, vm, plan, bootOpts{waitSSH: waitSSH}, r)
}

// bootOpts vary a boot: a restore starts the VMM from a saved state
// (vmm.Spec.Restore) instead of the kernel (save.go, snapshot.go).
type bootOpts struct {
	waitSSH bool
	// restore is a saved state's VMM directory; the VMM starts paused
	// from it, loaded() runs (it may refuse), then the VM is resumed, its
	// clock set and, with reseed, its RNG reseeded. No file_sync, no
	// wait for sshd: the guest continues, it does not boot.
	restore string
	reseed  bool
	loaded  func() error
	// warm starts the VM from a start-up snapshot (warmboot.go): a
	// restore of restore (the template) whose continued gives the guest
	// its identity, then file_sync and sshd as after a cold boot. A
	// failure returns without marking the VM failed.
	warm *warmStart
	// continued runs after a restore's resume, clock and reseed, before
	// the VM counts as running (a fork's reidentify); an error fails the
	// boot.
	continued func(*instance) error
	// memory backs a restore's RAM with a file (a fork's shared
	// template, mapped privately: forkshare.go).
	memory vmm.MemorySpec
}

func (s *Service) bootWith(ctx context.Context, vm *store.VM, plan BootPlan, o bootOpts, r progress.Reporter) error {
	// A VM continued from its own saved state had sshd running already; a
	// warm start boots its userland (systemd, sshd) afresh, as a cold one.
	waitSSH := o.waitSSH && (o.restore == "" || o.warm != nil)
	fail := func(err error) error {
		vm.State, vm.LastError = store.StateFailed, err.Error()
		s.Store.SetVMState(context.WithoutCancel(ctx), vm.ID, store.StateFailed, err.Error())
		return err
	}
	drv, ok := s.Drivers.lookup(vm.VMM)
	if !ok {
		return fail(fmt.Errorf("vm %s uses vmm %q, which this bangerd does not have", vm.Name, vm.VMM))
	}
	if err := drv.Available(); err != nil {
		return fail(fmt.Errorf("vmm %s: %w", vm.VMM, err))
	}
	prevState, prevErr := vm.State, vm.LastError
	s.Store.SetVMState(ctx, vm.ID, store.StateStarting, "")
	spec, err := s.machineSpec(ctx, *vm, plan, r)
	if err != nil {
		return fail(err)
	}
	locks, err := s.lockDisks(*vm, spec.Disks) // strays.go
	if err != nil {
		s.Store.SetVMState(context.WithoutCancel(ctx), vm.ID, prevState, prevErr)
		return err
	}
	defer vmm.CloseAll(locks) // the VMM holds its own copies
	spec.Inherit = locks
	spec.Restore = o.restore
	spec.Memory = o.memory
	progress.Stage(r, "network", "tap "+spec.Net.TAP+" on "+s.Config.Network.Bridge)
	if err := s.Net.EnsureBridge(ctx); err != nil {
		return fail(fmt.Errorf("network: %w", err))
	}
	if err := s.Net.CreateTAP(ctx, spec.Net.TAP); err != nil {
		return fail(fmt.Errorf("network: %w", err))
	}
	if err := s.applyNet(ctx, *vm); err != nil { // netpolicy.go
		s.Net.DeleteTAP(context.WithoutCancel(ctx), spec.Net.TAP)
		return fail(fmt.Errorf("network policy: %w", err))
	}
	var in *instance
	if o.restore != "" {
		if o.warm != nil {
			progress.Stage(r, "boot", fmt.Sprintf("%s (%s), warm from start-up snapshot %s", drv.Name(), drv.Accel(), o.warm.key[:12]))
		} else {
			progress.Stage(r, "restore", fmt.Sprintf("%s (%s) from %s", drv.Name(), drv.Accel(), o.restore))
		}
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if o.warm != nil {
			lctx, cancel = context.WithTimeout(ctx, warmAgentTimeout)
		}
		in, err = s.launchRestored(lctx, *vm, drv, spec, o, r)
		cancel()
		switch {
		case err != nil && o.warm != nil:
			// not failed: the caller boots the VM cold instead
			s.halt(ctx, *vm, in)
			s.Store.SetVMState(context.WithoutCancel(ctx), vm.ID, prevState, prevErr)
			return err
		case err != nil && vmmExited(in, exitGrace): // vmmdied.go
			err = s.vmmDied(ctx, *vm, in, err)
			vm.State, vm.LastError = store.StateStopped, err.Error()
			return err
		case err != nil:
			s.halt(ctx, *vm, in)
			return fail(err)
		case o.warm == nil:
			s.markStarted(vm.ID, "restore")
			return s.booted(ctx, vm, in)
		}
		s.markStarted(vm.ID, "snapshot "+o.warm.key[:12])
	} else if in, err = s.launchCold(ctx, *vm, drv, spec, r); err != nil {
		s.halt(ctx, *vm, in)
		return fail(err)
	}
	progress.Stage(r, "agent", "guest agent ready")
	s.syncFiles(ctx, *vm, in, r)
	if waitSSH && sshdMissing(plan.Image, *vm) != nil {
		progress.Stage(r, "ssh", "image "+vm.Image+" has no sshd: not waiting for one (use `banger vm exec "+vm.Name+" -- CMD`)")
		waitSSH = false
	}
	if waitSSH {
		if err := s.waitSSH(ctx, *vm, in); err != nil {
			s.halt(ctx, *vm, in)
			return fail(err)
		}
		in.sshOK.Store(true)
		progress.Stage(r, "ssh", "sshd ready at "+vm.IP)
	}
	return s.booted(ctx, vm, in)
}

// launchRestored starts the VMM from a saved state and continues it:
// resume, the agent's handshake, the clock set (and the RNG reseeded),
// then o.continued.
func (s *Service) launchRestored(ctx context.Context, vm store.VM, drv vmm.Driver, spec vmm.Spec, o bootOpts, r progress.Reporter) (*instance, error) {
	in, err := s.launch(ctx, vm, drv, spec)
	if err == nil {
		err = s.resumeRestored(ctx, vm, in, o)
	}
	if err != nil {
		return in, err
	}
	s.afterResume(ctx, vm, in, o.reseed, r)
	if o.continued != nil {
		err = o.continued(in)
	}
	return in, err
}

// launchCold starts the VMM booting the kernel and waits for the agent;
// a guest that stalls before its agent answers is restarted once.
func (s *Service) launchCold(ctx context.Context, vm store.VM, drv vmm.Driver, spec vmm.Spec, r progress.Reporter) (*instance, error) {
	progress.Stage(r, "boot", fmt.Sprintf("%s (%s)", drv.Name(), drv.Accel()))
	in, err := s.launch(ctx, vm, drv, spec)
	if err == nil {
		err = s.waitAgent(ctx, vm, in)
	}
	var stalled *bootStall
	if errors.As(err, &stalled) {
		// A guest whose console went silent before its agent ever
		// answered is hung, not slow (seen, rarely, under TCG on a loaded
		// host, in the quiet part of kernel start-up). No command has run
		// in it and its disks are at most freshly mounted, so one fresh
		// start is safe. The evidence is kept.
		evidence := s.recordStall(ctx, vm, in, stalled)
		progress.Stage(r, "boot", fmt.Sprintf("warning: the guest made no progress for %s before its agent started; restarting the VMM once (evidence: %s)",
			stalled.silent.Round(time.Second), evidence))
		in.closeAgent()
		// The new VMM inherits the same disk locks, so they cannot keep it
		// off disks the old one still writes: it starts only once the old
		// one is gone.
		if kerr := in.m.Kill(); kerr != nil {
			err = fmt.Errorf("%w; not restarting it: %v", stalled, kerr)
		} else {
			s.setInstance(vm.ID, nil)
			in, err = s.launch(ctx, vm, drv, spec)
			if err == nil {
				err = s.waitAgent(ctx, vm, in)
			}
		}
	}
	if err != nil {
		return in, err
	}
	s.markStarted(vm.ID, "boot")
	return in, nil
}

// booted records a VM that is up and watches its VMM.
func (s *Service) booted(ctx context.Context, vm *store.VM, in *instance) error {
	vm.State, vm.LastError = store.StateRunning, ""
	if err := s.Store.SetVMState(ctx, vm.ID, store.StateRunning, ""); err != nil {
		return err
	}
	s.startWatch(vm.ID, in)
	s.startForwards(ctx, *vm) // forward.go
	s.OnChange()
	return nil
}

// resumeRestored continues a VMM started from a saved state: loaded()
// first, then Resume, then the agent's handshake.
func (s *Service) resumeRestored(ctx context.Context, vm store.VM, in *instance, o bootOpts) error {
	sn, ok := in.m.(vmm.Snapshotter)
	if !ok {
		return notSupported(vm)
	}
	if vmmExited(in, 0) {
		return fmt.Errorf("the VMM of %s exited after loading the state, before the VM continued", vm.Name)
	}
	if o.loaded != nil {
		if err := o.loaded(); err != nil {
			return err
		}
	}
	if err := sn.Resume(ctx); err != nil {
		return fmt.Errorf("resume %s after loading its state: %w", vm.Name, err)
	}
	return s.waitAgent(ctx, vm, in)
}

// launch starts the VMM for a prepared spec and records its handles.
func (s *Service) launch(ctx context.Context, vm store.VM, drv vmm.Driver, spec vmm.Spec) (*instance, error) {
	dir := s.dir(vm.ID)
	if err := dir.WriteLaunchIntent(drv.Name(), vmm.Marker(vm.ID)); err != nil { // strays.go
		return nil, err
	}
	m, err := drv.Start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("start vmm: %w", err)
	}
	in := &instance{m: m}
	if err := dir.WriteHandles(m.Handles()); err != nil {
		m.Kill()
		return nil, err
	}
	os.Remove(dir.LaunchIntent())
	s.setInstance(vm.ID, in)
	return in, nil
}

// bootStall is waitAgent's verdict on a guest whose console stayed silent
// and whose agent never answered for BootStallTimeout.
type bootStall struct {
	silent time.Duration
	err    error // the boot error quoting the console
}

func (e *bootStall) Error() string { return e.err.Error() }

// waitAgent waits for the guest agent's handshake. A guest whose console
// stays silent for BootStallTimeout is reported as a *bootStall.
func (s *Service) waitAgent(ctx context.Context, vm store.VM, in *instance) error {
	ctx, cancel := context.WithTimeout(ctx, s.Config.BootTimeout.Duration)
	defer cancel()
	stall := s.Config.BootStallTimeout.Duration
	console := s.consoleLog(vm.ID)
	consoleSize := func() int64 {
		fi, err := os.Stat(console)
		if err != nil {
			return -1
		}
		return fi.Size()
	}
	lastSize, lastChange := consoleSize(), time.Now()
	for {
		actx, acancel := context.WithTimeout(ctx, min(15*time.Second, stall/4))
		c, err := in.agentClient(actx)
		if err == nil {
			_, err = c.Ping(actx)
		}
		acancel()
		if err == nil {
			return nil
		}
		if size := consoleSize(); size != lastSize {
			lastSize, lastChange = size, time.Now()
		}
		if silent := time.Since(lastChange); silent >= stall {
			return &bootStall{silent: silent, err: s.bootError(vm,
				fmt.Sprintf("the guest's console stayed silent and its agent did not answer for %s (it is hung)", silent.Round(time.Second)))}
		}
		select {
		case <-in.m.Done():
			return s.bootError(vm, "the VMM exited before the guest agent was ready")
		case <-ctx.Done():
			return s.bootError(vm, fmt.Sprintf("the guest agent was not ready within %s (last error: %v)", s.Config.BootTimeout.Duration, err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// recordStall writes what is known about a hung boot — the VMM's view of
// the vCPUs where the driver offers one, and the console so far — to
// boot-stall.txt in the VM's directory, and returns its path.
func (s *Service) recordStall(ctx context.Context, vm store.VM, in *instance, st *bootStall) string {
	var b strings.Builder
	fmt.Fprintf(&b, "banger: %s: %v\nat %s; the VMM was restarted once\n\n", vm.Name, st.err, time.Now().UTC().Format(time.RFC3339))
	var where []string // the instruction pointers, for the daemon log
	if dg, ok := in.m.(vmm.Diagnoser); ok {
		out, err := dg.Diagnose(ctx)
		b.WriteString(out)
		if err != nil {
			fmt.Fprintf(&b, "diagnose: %v\n", err)
		}
		for _, f := range strings.Fields(out) {
			if strings.HasPrefix(f, "RIP=") || strings.HasPrefix(f, "EIP=") {
				where = append(where, f)
			}
		}
	}
	if con, err := os.ReadFile(s.consoleLog(vm.ID)); err == nil {
		fmt.Fprintf(&b, "\n--- console (this start) ---\n%s", con)
	}
	path := s.dir(vm.ID).BootStall()
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		s.Log.Warn("record boot stall", "vm", vm.Name, "err", err)
	}
	s.Log.Warn("guest boot stalled; restarting its VMM once", "vm", vm.Name, "evidence", path, "vcpus", strings.Join(where, " "))
	return path
}

func (s *Service) waitSSH(ctx context.Context, vm store.VM, in *instance) error {
	signer, _, err := s.Keys.EnsureUserKey()
	if err != nil {
		return err
	}
	pub, err := os.ReadFile(s.dir(vm.ID).HostKeyPub())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Config.BootTimeout.Duration)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.SSHReady(ctx, net.JoinHostPort(vm.IP, "22"), signer, pub) }()
	select {
	case err := <-errc:
		if err != nil {
			return s.bootError(vm, err.Error())
		}
		return nil
	case <-in.m.Done():
		cancel()
		return s.bootError(vm, "the VMM exited before sshd was ready")
	}
}

// bootError quotes the end of the serial console and where the rest is.
func (s *Service) bootError(vm store.VM, why string) error {
	log := s.consoleLog(vm.ID)
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Errorf("boot %s: %s\nlast console lines:\n  %s\nfull console log: %s",
		vm.Name, why, strings.Join(lines, "\n  "), log)
}

func (s *Service) consoleLog(id string) string { return s.dir(id).ConsoleLog() }

var errNotRunning = errors.New("vm is not running")

// sshdMissing explains, for an image recorded without sshd, why `vm ssh`
// cannot work; nil when the image has (or may have) one.
func sshdMissing(im store.Image, vm store.VM) error {
	if im.HasSSHD {
		return nil
	}
	return api.Conflictf("image %s has no sshd, so vm %s cannot be reached with ssh: run commands through banger's agent with `banger vm exec %s -- CMD`, or use an image with openssh-server", im.Name, vm.Name, vm.Name)
}
