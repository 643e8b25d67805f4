package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vmm"
)

// instance is a running VM's transient state.
type instance struct {
	m       vmm.Machine
	agentMu sync.Mutex
	agent   *client.Client
	sshOK   atomic.Bool // sshd answered with the pinned key (vm_ssh.go)
}

// agentClient returns a connected agent client, reconnecting when the
// previous session has ended (for example after a daemon restart).
func (in *instance) agentClient(ctx context.Context) (*client.Client, error) {
	in.agentMu.Lock()
	defer in.agentMu.Unlock()
	if in.agent != nil {
		select {
		case <-in.agent.Done():
			in.agent = nil
		default:
			return in.agent, nil
		}
	}
	conn, err := in.m.DialAgent(ctx)
	if err != nil {
		return nil, fmt.Errorf("reach guest agent: %w", err)
	}
	c, err := client.Connect(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("guest agent handshake: %w", err)
	}
	in.agent = c
	return c, nil
}

func (in *instance) closeAgent() {
	in.agentMu.Lock()
	defer in.agentMu.Unlock()
	if in.agent != nil {
		in.agent.Close()
		in.agent = nil
	}
}

// bootVM starts a prepared VM and waits for its agent (and sshd when
// waitSSH). The caller holds the VM's lock.
func (d *Daemon) bootVM(ctx context.Context, vm *store.VM, waitSSH bool, progress progressFn) error {
	fail := func(err error) error {
		vm.State, vm.LastError = store.StateFailed, err.Error()
		d.store.SetVMState(context.WithoutCancel(ctx), vm.ID, store.StateFailed, err.Error())
		return err
	}
	drv, ok := d.drivers.lookup(vm.VMM)
	if !ok {
		return fail(fmt.Errorf("vm %s uses vmm %q, which this bangerd does not have", vm.Name, vm.VMM))
	}
	if err := drv.Available(); err != nil {
		return fail(fmt.Errorf("vmm %s: %w", vm.VMM, err))
	}
	prevState, prevErr := vm.State, vm.LastError
	d.store.SetVMState(ctx, vm.ID, store.StateStarting, "")
	spec, err := d.machineSpec(ctx, *vm, progress)
	if err != nil {
		return fail(err)
	}
	locks, err := d.lockDisks(*vm, spec.Disks) // strays.go
	if err != nil {
		d.store.SetVMState(context.WithoutCancel(ctx), vm.ID, prevState, prevErr)
		return err
	}
	defer vmm.CloseAll(locks) // the VMM holds its own copies
	spec.Inherit = locks
	progress("network", "tap "+spec.Net.TAP+" on "+d.cfg.Network.Bridge)
	if err := d.net.EnsureBridge(ctx); err != nil {
		return fail(fmt.Errorf("network: %w", err))
	}
	if err := d.net.CreateTAP(ctx, spec.Net.TAP); err != nil {
		return fail(fmt.Errorf("network: %w", err))
	}
	progress("boot", fmt.Sprintf("%s (%s)", drv.Name(), drv.Accel()))
	in, err := d.launch(ctx, *vm, drv, spec)
	if err == nil {
		err = d.waitAgent(ctx, *vm, in)
	}
	var stalled *bootStall
	if errors.As(err, &stalled) {
		// A guest whose console went silent before its agent ever
		// answered is hung, not slow (seen, rarely, under TCG on a loaded
		// host, in the quiet part of kernel start-up). No command has run
		// in it and its disks are at most freshly mounted, so one fresh
		// start is safe. The evidence is kept.
		evidence := d.recordStall(ctx, *vm, in, stalled)
		progress("boot", fmt.Sprintf("warning: the guest made no progress for %s before its agent started; restarting the VMM once (evidence: %s)",
			stalled.silent.Round(time.Second), evidence))
		in.closeAgent()
		// The new VMM inherits the same disk locks, so they cannot keep it
		// off disks the old one still writes: it starts only once the old
		// one is gone.
		if kerr := in.m.Kill(); kerr != nil {
			err = fmt.Errorf("%w; not restarting it: %v", stalled, kerr)
		} else {
			d.setInstance(vm.ID, nil)
			in, err = d.launch(ctx, *vm, drv, spec)
			if err == nil {
				err = d.waitAgent(ctx, *vm, in)
			}
		}
	}
	if err != nil {
		d.halt(ctx, *vm, in)
		return fail(err)
	}
	progress("agent", "guest agent ready")
	d.syncFiles(ctx, *vm, in, progress)
	if waitSSH && d.sshdMissing(ctx, *vm) != nil {
		progress("ssh", "image "+vm.Image+" has no sshd: not waiting for one (use `banger vm exec "+vm.Name+" -- CMD`)")
		waitSSH = false
	}
	if waitSSH {
		if err := d.waitSSH(ctx, *vm, in); err != nil {
			d.halt(ctx, *vm, in)
			return fail(err)
		}
		in.sshOK.Store(true)
		progress("ssh", "sshd ready at "+vm.IP)
	}
	vm.State, vm.LastError = store.StateRunning, ""
	if err := d.store.SetVMState(ctx, vm.ID, store.StateRunning, ""); err != nil {
		return err
	}
	d.startWatch(vm.ID, in)
	d.notifyVMChanged()
	return nil
}

// startWatch runs watch for a VM until its VMM exits or the daemon stops.
func (d *Daemon) startWatch(id string, in *instance) {
	d.watchWG.Add(1)
	go func() {
		defer d.watchWG.Done()
		d.watch(id, in)
	}()
}

// watch notices a VMM that exits on its own (guest poweroff, crash) and
// releases its host resources.
func (d *Daemon) watch(id string, in *instance) {
	select {
	case <-in.m.Done():
	case <-d.stopping:
		return // the daemon is exiting; the VM keeps running
	}
	lock := d.vmLock(id)
	lock.Lock()
	defer lock.Unlock()
	if d.instance(id) != in {
		return // stopped or restarted by someone else
	}
	ctx := context.Background()
	vm, err := d.store.GetVM(ctx, id)
	if err != nil {
		d.setInstance(id, nil)
		return
	}
	d.log.Info("vm exited on its own", "vm", vm.Name)
	d.halt(ctx, vm, in)
	d.store.SetVMState(ctx, id, store.StateStopped, "the VM powered off or its VMM exited")
	d.notifyVMChanged()
}

// launch starts the VMM for a prepared spec and records its handles.
func (d *Daemon) launch(ctx context.Context, vm store.VM, drv vmm.Driver, spec vmm.Spec) (*instance, error) {
	dir := d.dir(vm.ID)
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
	d.setInstance(vm.ID, in)
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
func (d *Daemon) waitAgent(ctx context.Context, vm store.VM, in *instance) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.BootTimeout.Duration)
	defer cancel()
	stall := d.cfg.BootStallTimeout.Duration
	console := d.consoleLog(vm.ID)
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
			return &bootStall{silent: silent, err: d.bootError(vm,
				fmt.Sprintf("the guest's console stayed silent and its agent did not answer for %s (it is hung)", silent.Round(time.Second)))}
		}
		select {
		case <-in.m.Done():
			return d.bootError(vm, "the VMM exited before the guest agent was ready")
		case <-ctx.Done():
			return d.bootError(vm, fmt.Sprintf("the guest agent was not ready within %s (last error: %v)", d.cfg.BootTimeout.Duration, err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// recordStall writes what is known about a hung boot — the VMM's view of
// the vCPUs where the driver offers one, and the console so far — to
// boot-stall.txt in the VM's directory, and returns its path.
func (d *Daemon) recordStall(ctx context.Context, vm store.VM, in *instance, st *bootStall) string {
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
	if con, err := os.ReadFile(d.consoleLog(vm.ID)); err == nil {
		fmt.Fprintf(&b, "\n--- console (this start) ---\n%s", con)
	}
	path := d.dir(vm.ID).BootStall()
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		d.log.Warn("record boot stall", "vm", vm.Name, "err", err)
	}
	d.log.Warn("guest boot stalled; restarting its VMM once", "vm", vm.Name, "evidence", path, "vcpus", strings.Join(where, " "))
	return path
}

func (d *Daemon) waitSSH(ctx context.Context, vm store.VM, in *instance) error {
	signer, _, err := d.keys.EnsureUserKey()
	if err != nil {
		return err
	}
	pub, err := os.ReadFile(d.dir(vm.ID).HostKeyPub())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.BootTimeout.Duration)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.sshReady(ctx, net.JoinHostPort(vm.IP, "22"), signer, pub) }()
	select {
	case err := <-errc:
		if err != nil {
			return d.bootError(vm, err.Error())
		}
		return nil
	case <-in.m.Done():
		cancel()
		return d.bootError(vm, "the VMM exited before sshd was ready")
	}
}

// bootError quotes the end of the serial console and where the rest is.
func (d *Daemon) bootError(vm store.VM, why string) error {
	log := d.consoleLog(vm.ID)
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Errorf("boot %s: %s\nlast console lines:\n  %s\nfull console log: %s",
		vm.Name, why, strings.Join(lines, "\n  "), log)
}

func (d *Daemon) consoleLog(id string) string { return d.dir(id).ConsoleLog() }

// dir is a VM's file layout.
func (d *Daemon) dir(id string) vmdir.Dir { return vmdir.For(d.paths, id) }

// halt stops a VM's VMM at once and releases its host resources (the
// caller records the new state). Used on failures and for teardown.
func (d *Daemon) halt(ctx context.Context, vm store.VM, in *instance) {
	if in != nil {
		in.closeAgent()
		if err := in.m.Kill(); err != nil {
			d.log.Warn("kill vmm", "vm", vm.Name, "err", err)
		}
	}
	d.killStrays(vm, 0) // one started by a daemon that died before recording it
	d.setInstance(vm.ID, nil)
	if err := d.net.DeleteTAP(ctx, tapName(vm.ID)); err != nil {
		d.log.Warn("delete tap", "vm", vm.Name, "err", err)
	}
	os.RemoveAll(d.dir(vm.ID).Runtime())
}

// stopVM shuts the guest down gracefully (agent, then ACPI), waits a
// bounded time, then kills. The caller holds the VM's lock.
func (d *Daemon) stopVM(ctx context.Context, vm store.VM) error {
	in := d.instance(vm.ID)
	if in == nil {
		return d.store.SetVMState(ctx, vm.ID, store.StateStopped, "")
	}
	d.store.SetVMState(ctx, vm.ID, store.StateStopping, "")
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
		d.log.Warn("graceful stop failed; killing", "vm", vm.Name)
	}
	d.halt(ctx, vm, in)
	defer d.notifyVMChanged()
	return d.store.SetVMState(ctx, vm.ID, store.StateStopped, "")
}

var errNotRunning = errors.New("vm is not running")
