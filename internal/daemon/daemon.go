// Package daemon is bangerd's composition root: it reads the
// configuration, builds the services (internal/vms, internal/artifacts,
// internal/workspaces, internal/network) with their dependencies and the
// small adapters between them, reconciles stored intent with what runs
// at start-up, serves them through the unix-socket adapter
// (internal/rpcapi over internal/rpc) and shuts down. It holds no
// behaviour of its own: a new capability is a service method, a new
// transport a sibling of rpcapi.
//
// Lock order (each service documents its own): the VM service's
// reservation lock → one VM's lifecycle lock → its in-memory maps (never
// held across I/O); the artifacts service's provisioning lock is taken
// before any VM lock; a workspace import's per-VM lock is never held with
// a VM lock.
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

	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/httpapi/apikeys"
	"github.com/banger-dev/banger/internal/network"
	"github.com/banger-dev/banger/internal/rpcapi"
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
	paths    config.Paths
	cfg      config.Config
	log      *slog.Logger
	store    *store.Store
	lockFile *os.File // flock held for the daemon's lifetime

	svc rpcapi.Services

	stop func() // ends Run (daemon.shutdown); set by Run
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

// New opens the store and builds the services. On error everything it
// acquired is released.
func New(ctx context.Context, o Options) (*Daemon, error) {
	d := &Daemon{paths: o.Paths, cfg: o.Config, log: o.Log}
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
	d.wire(o, subnet.Masked())
	return d, nil
}

// wire builds the services and connects them: each depends on the small
// interfaces it declares, satisfied here by another service or an
// adapter (adapters.go).
func (d *Daemon) wire(o Options, subnet netip.Prefix) {
	net := o.Net
	if net == nil {
		net = hostnet.NewLinux(hostnet.Config{Bridge: d.cfg.Network.Bridge, Subnet: subnet, DNSPort: d.cfg.Network.DNSPort,
			GuestsReachHost: d.cfg.Network.GuestsReachHost}, d.log)
	}
	var drivers vms.Drivers
	if o.Driver != nil {
		drivers = vms.SingleDriver(o.Driver)
	} else {
		drivers = vms.NewDrivers(d.cfg, d.log)
	}
	keys := &guestssh.Keys{Dir: d.paths.SSHDir()}
	s := &d.svc
	s.Artifacts = artifacts.New(artifacts.Deps{Paths: d.paths, Config: d.cfg, Log: d.log, Store: d.store,
		AgentBinary: d.agentBinary, VMs: vmsForArtifacts{s}})
	s.Workspaces = workspaces.New(workspaces.Deps{Guests: guests{s}, Log: d.log,
		GuestFS: func(p string) string { return guestFS(p) }})
	s.VMs = vms.New(vms.Deps{
		Paths: d.paths, Config: d.cfg, Host: config.ProbeHost(), Log: d.log, Store: d.store, Net: net,
		Drivers: drivers, Keys: keys, SSHReady: o.SSHReady, SSHProbe: o.SSHProbe,
		Artifacts: s.Artifacts, Importer: importer{s},
		OnChange:   func() { s.Network.Refresh() },
		GuestFS:    func(p string) string { return guestFS(p) },
		GuestClock: guestClock,
	})
	s.APIKeys = apikeys.New(d.store)
	s.Network = network.New(network.Deps{
		Bridge: d.cfg.Network.Bridge, Net: net, VMs: netVMs{vms: s.VMs, store: d.store}, Log: d.log,
		SSHConfig: sshconfig.BangerConfigPath(d.paths.ConfigDir), IdentityFile: keys.IdentityFile(), KnownHosts: keys.KnownHostsFile(),
		Domains: s.VMs.GuestDNS, // issue 16: domain rules through banger's DNS
	})
}
