// Package daemon is bangerd: it wires the store, the VMM drivers, host
// networking and the guest agents together, serves the CLI's RPCs, and at
// start-up reconciles stored intent with what is really running.
//
// VMs are the vms service's (its package doc has the lock order).
// artifacts.Service serialises image/kernel builds.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/buildinfo"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/network"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/sshconfig"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vms"
	"github.com/banger-dev/banger/internal/workspaces"
)

// Version is set at build time.
var Version = "dev"

// Daemon is one running bangerd.
type Daemon struct {
	paths config.Paths
	cfg   config.Config
	log   *slog.Logger
	store *store.Store
	net   hostnet.Network
	keys  *guestssh.Keys
	vms   *vms.Service // VM lifecycle and exec (vms.go wires it)

	reserveMu reserveShim // vms.go: the vms service's reservation lock

	lockFile *os.File         // flock held for the daemon's lifetime
	network  *network.Service // DNS + ssh_config + network show/teardown

	artifacts  *artifacts.Service  // images and kernels (artifacts.go)
	workspaces *workspaces.Service // vm workspace prepare|export, vm run REPO's import
}

// Options are the daemon's dependencies; zero values get real ones.
type Options struct {
	Paths  config.Paths
	Config config.Config
	Log    *slog.Logger
	Net    hostnet.Network
	Driver vmm.Driver
	// SSHReady probes a guest's sshd; default guestssh.WaitReady.
	SSHReady func(ctx context.Context, addr string, user ssh.Signer, hostKey []byte) error
	// SSHProbe checks a guest's sshd once; default guestssh.Probe.
	SSHProbe func(ctx context.Context, addr string, user ssh.Signer, hostKey []byte) error
}

// New opens the store and prepares the daemon. On error everything it
// acquired is released.
func New(ctx context.Context, o Options) (*Daemon, error) {
	d := &Daemon{
		paths: o.Paths, cfg: o.Config, log: o.Log, net: o.Net,
		keys: &guestssh.Keys{Dir: o.Paths.SSHDir()},
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	for _, dir := range []string{o.Paths.StateDir, o.Paths.CacheDir, o.Paths.ImageDir(), o.Paths.KernelDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := o.Paths.EnsureRuntimeDir(); err != nil {
		return nil, err
	}
	subnet, err := netip.ParsePrefix(o.Config.Network.Subnet)
	if err != nil {
		return nil, fmt.Errorf("network.subnet: %w", err)
	}
	if d.net == nil {
		d.net = hostnet.NewLinux(hostnet.Config{Bridge: o.Config.Network.Bridge, Subnet: subnet.Masked(), DNSPort: o.Config.Network.DNSPort, GuestsReachHost: o.Config.Network.GuestsReachHost}, d.log)
	}
	var drivers vms.Drivers
	if o.Driver != nil {
		drivers = vms.SingleDriver(o.Driver)
	} else {
		drivers = vms.NewDrivers(o.Config, d.log)
	}
	lock, err := os.OpenFile(filepath.Join(o.Paths.RuntimeDir, "bangerd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another bangerd is already running for this user (lock %s)", lock.Name())
	}
	st, err := store.Open(ctx, o.Paths.Database())
	if err != nil {
		lock.Close()
		return nil, err
	}
	d.store, d.lockFile = st, lock
	d.artifacts = d.newArtifacts()
	d.workspaces = newWorkspaces(d)
	d.wireVMs(o, drivers) // vms.go
	d.network = network.New(network.Deps{
		Bridge: o.Config.Network.Bridge, Net: d.net, VMs: netVMs{vms: d.vms, store: d.store}, Log: d.log,
		SSHConfig: sshconfig.BangerConfigPath(o.Paths.ConfigDir), IdentityFile: d.keys.IdentityFile(), KnownHosts: d.keys.KnownHostsFile(),
	})
	return d, nil
}

// Run serves until ctx is cancelled or a shutdown call arrives. Running
// VMs are left running: the next daemon re-attaches to them.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.lockFile.Close()
	defer d.store.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.vms.Reconcile(ctx)
	stopServices, err := d.startServices(ctx)
	if err != nil {
		return err
	}
	defer stopServices()
	l, err := rpc.Listen(d.paths.Socket())
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.paths.PIDFile(), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		l.Close()
		return err
	}
	defer os.Remove(d.paths.PIDFile())
	srv := &rpc.Server{Handlers: d.handlers(cancel), Log: d.log}
	go func() {
		<-ctx.Done()
		l.Close()
		// Exec streams would keep the daemon (and its lock) alive for as
		// long as their commands run: end them now.
		d.vms.Interrupt()
	}()
	vmmName, vmmWhy, _ := d.vms.VMM()
	d.log.Info("bangerd listening", "socket", d.paths.Socket(), "pid", os.Getpid(), "vmm", vmmName, "why", vmmWhy)
	// Serve returns within rpc.DefaultGrace of the stop; relays and
	// background work get stopBound more.
	err = srv.Serve(ctx, l)
	if !d.vms.Wait(stopBound) {
		d.log.Warn("stopping with background work still running", "waited", stopBound)
	}
	d.vms.Close()
	os.Remove(d.paths.Socket())
	return err
}

func (d *Daemon) status() api.Status {
	vmmName, vmmWhy, accel := d.vms.VMM()
	st := api.Status{
		PID: os.Getpid(), Version: buildinfo.Current(Version).Version, APIVersion: api.Version, Socket: d.paths.Socket(),
		StateDir: d.paths.StateDir, VMM: vmmName, VMMReason: vmmWhy, Accel: accel, Running: d.vms.Running(),
	}
	if p, err := d.agentBinary(); err == nil {
		st.AgentVersion, _ = buildinfo.AgentVersion(context.Background(), p) // cached per binary
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
