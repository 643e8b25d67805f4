package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/buildinfo"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
)

// stopBound is how long Run waits, after the RPC server has ended
// (rpc.DefaultGrace), for relays and background work to wind down
// before it returns anyway.
const stopBound = 5 * time.Second

// Run serves until ctx is cancelled or a shutdown call arrives. Running
// VMs are left running: the next daemon re-attaches to them.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.lockFile.Close()
	defer d.store.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.stop = cancel
	d.svc.VMs.Reconcile(ctx)
	stopBackground, err := d.startBackground(ctx)
	if err != nil {
		return err
	}
	defer stopBackground()
	l, err := rpc.Listen(d.paths.Socket())
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.paths.PIDFile(), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		l.Close()
		return err
	}
	defer os.Remove(d.paths.PIDFile())
	srv := &rpc.Server{Handlers: rpcapi.All(d, d.svc), Log: d.log}
	go func() {
		<-ctx.Done()
		l.Close()
		// Exec streams would keep the daemon (and its lock) alive for as
		// long as their commands run: end them now.
		d.svc.VMs.Interrupt()
	}()
	vmmName, vmmWhy, _ := d.svc.VMs.VMM()
	d.log.Info("bangerd listening", "socket", d.paths.Socket(), "pid", os.Getpid(), "vmm", vmmName, "why", vmmWhy)
	// Serve returns within rpc.DefaultGrace of the stop; relays and
	// background work get stopBound more.
	err = srv.Serve(ctx, l)
	if !d.svc.VMs.Wait(stopBound) {
		d.log.Warn("stopping with background work still running", "waited", stopBound)
	}
	d.svc.VMs.Close()
	os.Remove(d.paths.Socket())
	return err
}

// startBackground starts the services' long-running parts after
// reconcile and before serving: the network service (DNS, ssh_config),
// the stats poller, and a sweep of layer blobs that interrupted pulls
// left more than a day ago (no pull runs yet). stop ends them in reverse.
func (d *Daemon) startBackground(ctx context.Context) (stop func(), err error) {
	stopNet, err := d.svc.Network.Start(ctx)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		d.svc.VMs.PollStats(pctx)
	}()
	d.svc.Artifacts.SweepBlobs()
	stopAPI, err := d.startAPI(ctx)
	if err != nil {
		cancel()
		<-polled
		stopNet()
		return nil, fmt.Errorf("http api ([api] listen = %q): %w", d.cfg.API.Listen, err)
	}
	return func() {
		stopAPI()
		cancel()
		<-polled
		stopNet()
	}, nil
}

// Status is `banger daemon status`.
func (d *Daemon) Status() api.Status {
	vmmName, vmmWhy, accel := d.svc.VMs.VMM()
	st := api.Status{
		PID: os.Getpid(), Version: buildinfo.Current(Version).Version, APIVersion: api.Version, Socket: d.paths.Socket(),
		StateDir: d.paths.StateDir, VMM: vmmName, VMMReason: vmmWhy, Accel: accel, Running: d.svc.VMs.Running(),
	}
	if p, err := d.agentBinary(); err == nil {
		st.AgentVersion, _ = buildinfo.AgentVersion(context.Background(), p) // cached per binary
	}
	return st
}

// Shutdown is `banger daemon stop`: the status with the exec streams the
// stop interrupts, then the stop, once the answer is on its way.
func (d *Daemon) Shutdown() api.Status {
	st := d.Status()
	st.Interrupted = d.svc.VMs.Interrupted()
	if d.stop != nil {
		time.AfterFunc(50*time.Millisecond, d.stop)
	}
	return st
}

// agentBinary finds banger-agent: config, then beside bangerd.
func (d *Daemon) agentBinary() (string, error) {
	if d.cfg.AgentBin != "" {
		return d.cfg.AgentBin, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(self), "banger-agent")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("banger-agent not found beside bangerd (%s): run `make build` or set agent_bin", p)
	}
	return p, nil
}
