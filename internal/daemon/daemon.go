// Package daemon is bangerd: it wires the store, the VMM drivers, host
// networking and the guest agents together, serves the CLI's RPCs, and at
// start-up reconciles stored intent with what is really running.
//
// Lock order: Daemon.reserveMu (name/address reservation, held only for
// the insert) → vmLock(id) (one VM's lifecycle) → Daemon.mu (the in-memory
// maps, never held across I/O). artifacts.Service serialises image/kernel builds.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/buildinfo"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// Version is set at build time.
var Version = "dev"

// Daemon is one running bangerd.
type Daemon struct {
	paths    config.Paths
	cfg      config.Config
	log      *slog.Logger
	store    *store.Store
	net      hostnet.Network
	drivers  drivers
	keys     *guestssh.Keys
	host     config.Host
	sshReady func(ctx context.Context, addr string, user ssh.Signer, hostKey []byte) error
	sshProbe func(ctx context.Context, addr string, user ssh.Signer, hostKey []byte) error

	reserveMu sync.Mutex

	mu        sync.Mutex
	locks     map[string]*vmLockEntry // vmlock.go
	instances map[string]*instance

	lockFile *os.File // flock held for the daemon's lifetime
	statsc   statsCache
	netSvc   atomic.Pointer[netState] // DNS + ssh_config service, while it runs

	// stopping is closed when Run returns; watchers end with it.
	stopping chan struct{}
	watchWG  sync.WaitGroup

	// bgWG tracks work that outlives a request (vm run teardown, exec
	// relays); relays lists the exec relays for daemon stop.
	bgWG   sync.WaitGroup
	relays relaySet

	artifacts *artifacts.Service // images and kernels (artifacts.go)
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
		host: config.ProbeHost(), sshReady: o.SSHReady,
		locks: map[string]*vmLockEntry{}, instances: map[string]*instance{}, stopping: make(chan struct{}),
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.sshReady == nil {
		d.sshReady = guestssh.WaitReady
	}
	if d.sshProbe = o.SSHProbe; d.sshProbe == nil {
		d.sshProbe = guestssh.Probe
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
	if o.Driver != nil {
		d.drivers = singleDriver(o.Driver)
	} else {
		d.drivers = newDrivers(o.Config, d.log)
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
	return d, nil
}

// Run serves until ctx is cancelled or a shutdown call arrives. Running
// VMs are left running: the next daemon re-attaches to them.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.lockFile.Close()
	defer d.store.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.reconcile(ctx)
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
		d.relays.interruptAll()
	}()
	d.log.Info("bangerd listening", "socket", d.paths.Socket(), "pid", os.Getpid(), "vmm", d.drivers.def, "why", d.drivers.why)
	// Serve returns within rpc.DefaultGrace of the stop; relays and
	// background work get stopBound more.
	err = srv.Serve(ctx, l)
	if !waitBounded(&d.bgWG, stopBound) {
		d.log.Warn("stopping with background work still running", "waited", stopBound)
	}
	close(d.stopping)
	d.watchWG.Wait()
	os.Remove(d.paths.Socket())
	return err
}

func (d *Daemon) instance(id string) *instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.instances[id]
}

func (d *Daemon) setInstance(id string, in *instance) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in == nil {
		delete(d.instances, id)
	} else {
		d.instances[id] = in
	}
}

func (d *Daemon) status() api.Status {
	d.mu.Lock()
	n := len(d.instances)
	d.mu.Unlock()
	st := api.Status{
		PID: os.Getpid(), Version: buildinfo.Current(Version).Version, APIVersion: api.Version, Socket: d.paths.Socket(),
		StateDir: d.paths.StateDir, VMM: d.drivers.def, VMMReason: d.drivers.why, Accel: d.defaultAccel(), Running: n,
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

func (d *Daemon) defaultAccel() string {
	if drv, ok := d.drivers.lookup(d.drivers.def); ok {
		return drv.Accel()
	}
	return ""
}
