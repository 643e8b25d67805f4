// Package vms is the VM service: everything about VMs, from the name
// reservation to the guest's exit status. It owns each running VM's
// instance (its VMM machine, agent connection, watcher and TAP), the
// per-VM locks, create/boot/start/stop/restart/set/delete, list/show,
// ssh, stats and ports, exec (vm run, vm exec) and the byte streams of
// vm cp and vm logs, the [[file_sync]] copy at every boot, stray VMMs,
// the VM part of start-up reconcile and the choice of VMM driver.
//
// Methods take typed parameters and a progress.Reporter and return typed
// results; none sees a transport. A call that becomes a byte stream (exec,
// cp, logs) returns a *Session: the transport sends its Result, hands
// over its raw connection with Relay, and the service runs the relay in
// the background, tracked so that Interrupt (daemon stop) ends it.
//
// What other services own comes in through small interfaces (Artifacts,
// Importer) and the OnChange hook, wired by the daemon.
//
// Lock order: Service.reserveMu (name/address reservation, held only for
// the insert) → lockVM(id) (one VM's lifecycle) → Service.mu (the
// in-memory maps, never held across I/O).
package vms

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vmm"
)

// Artifacts is what VMs need from the image and kernel service.
type Artifacts interface {
	// BootArtifacts returns the image and the kernel to boot it with,
	// provisioning (pulling) what is missing, with progress.
	BootArtifacts(ctx context.Context, image string, r progress.Reporter) (store.Image, store.Kernel, error)
	// Initrd returns the initramfs for a kernel and the current agent.
	Initrd(ctx context.Context, k store.Kernel, r progress.Reporter) (string, error)
	// ModulesDisk is the kernel's module disk, when it has one.
	ModulesDisk(k store.Kernel) (vmm.Disk, proto.GuestDisk, bool)
}

// ImportFunc imports a vm run's workspace into its VM once the VM is up
// and before the command starts; it may set p.Dir.
type ImportFunc func(ctx context.Context, vm store.VM, p *api.RunParams, r progress.Reporter) error

// Importer is what vm run needs from the workspace service.
type Importer interface {
	// PrepareRun checks p's workspace request before any VM exists and
	// returns the import to run, or nil when p has none. archive is the
	// import's archive as the client sends it (the call's request body),
	// read only by the returned import.
	PrepareRun(ctx context.Context, p *api.RunParams, archive io.Reader) (ImportFunc, error)
}

// SSHFunc probes a guest's sshd at addr with the user key and the pinned
// host key (guestssh.WaitReady, guestssh.Probe).
type SSHFunc func(ctx context.Context, addr string, user ssh.Signer, hostKey []byte) error

// Deps are the service's dependencies; the daemon wires the real ones.
type Deps struct {
	Paths     config.Paths
	Config    config.Config
	Host      config.Host
	Log       *slog.Logger
	Store     *store.Store
	Net       hostnet.Network
	Drivers   Drivers
	Keys      *guestssh.Keys
	SSHReady  SSHFunc // default guestssh.WaitReady
	SSHProbe  SSHFunc // default guestssh.Probe
	Artifacts Artifacts
	Importer  Importer // nil: vm run refuses a workspace
	// OnChange runs after a VM is created, started, stopped, deleted or
	// found dead (DNS names, ssh_config). It must not block for long nor
	// take VM locks.
	OnChange func()
	// GuestFS maps a guest path to where the agent writes it: tests run
	// the agent on the host. Nil is the identity.
	GuestFS func(string) string
	// GuestClock are the agent calls after a resume or restore; zero
	// fields call the agent. Tests whose agent runs on the host replace
	// them (the agent would set the host's clock).
	GuestClock GuestClock
}

// GuestClock sets a guest's wall clock and reseeds its RNG through its
// agent (pause.go).
type GuestClock struct {
	SetTime func(c *client.Client, ctx context.Context, t time.Time) error
	Reseed  func(c *client.Client, ctx context.Context, entropy []byte) error
	// Reidentify gives a fork its own identity (fork.go); tests must
	// replace it too: on a host agent it would rename the host.
	Reidentify func(c *client.Client, ctx context.Context, p proto.ReidentifyParams) (proto.ReidentifyResult, error)
	// Settle waits for a warm-start template's boot to finish and says
	// how far it got (warmcapture.go); tests replace it: on a host agent
	// it would wait for the host's systemd.
	Settle func(c *client.Client, ctx context.Context) (string, error)
}

// Service is the VM service of one daemon.
type Service struct {
	Deps
	reserveMu sync.Mutex

	mu        sync.Mutex
	locks     map[string]*vmLockEntry // vmlock.go
	instances map[string]*instance

	statsc statsCache

	domains sync.Map // guest address → guestDomains (netpolicy.go)
	fwds    sync.Map // VM id → *vmForwards (forward.go)

	// stopping is closed by Close; watchers end with it.
	stopping chan struct{}
	watchWG  sync.WaitGroup

	// bgWG tracks work that outlives a request (vm run teardown, exec
	// relays); relays lists the exec relays for daemon stop.
	bgWG   sync.WaitGroup
	relays relaySet

	// copyDisk copies a disk for a snapshot or a restore (diskcopy.go);
	// tests inject failures.
	copyDisk func(dst, src string) error

	warm warmState // warm-start template captures (warm.go)
}

// New returns the service; nothing runs until Reconcile.
func New(d Deps) *Service {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.SSHReady == nil {
		d.SSHReady = guestssh.WaitReady
	}
	if d.SSHProbe == nil {
		d.SSHProbe = guestssh.Probe
	}
	if d.OnChange == nil {
		d.OnChange = func() {}
	}
	if d.GuestClock.SetTime == nil {
		d.GuestClock.SetTime = (*client.Client).SetTime
	}
	if d.GuestClock.Reseed == nil {
		d.GuestClock.Reseed = (*client.Client).Reseed
	}
	if d.GuestClock.Reidentify == nil {
		d.GuestClock.Reidentify = (*client.Client).Reidentify
	}
	if d.GuestClock.Settle == nil {
		d.GuestClock.Settle = settleGuest
	}
	if d.GuestFS == nil {
		d.GuestFS = func(p string) string { return p }
	}
	return &Service{Deps: d, locks: map[string]*vmLockEntry{}, instances: map[string]*instance{}, stopping: make(chan struct{}),
		copyDisk: copyDisk}
}

func (s *Service) instance(id string) *instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instances[id]
}

func (s *Service) setInstance(id string, in *instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in == nil {
		delete(s.instances, id)
	} else {
		s.instances[id] = in
	}
}

// dir is a VM's file layout.
func (s *Service) dir(id string) vmdir.Dir { return vmdir.For(s.Paths, id) }

// IsRunning says whether the VM with id has a running instance.
func (s *Service) IsRunning(id string) bool { return s.instance(id) != nil }

// Running is the number of running VMs.
func (s *Service) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.instances)
}

// VMM is the default driver, why it was chosen, and its acceleration.
func (s *Service) VMM() (name, why, accel string) {
	name, why = s.Drivers.def, s.Drivers.why
	if drv, ok := s.Drivers.lookup(name); ok {
		accel = drv.Accel()
	}
	return name, why, accel
}

// LockReservations keeps new VMs from being reserved until unlock (network
// teardown); a VM reserved earlier is in the store as creating.
func (s *Service) LockReservations() (unlock func()) {
	s.reserveMu.Lock()
	return s.reserveMu.Unlock
}

// LockVM takes one VM's lifecycle lock (image promote reads its disk).
func (s *Service) LockVM(id string) (unlock func()) {
	l := s.lockVM(id)
	l.Lock()
	return l.Unlock
}

// View is a VM as the API shows it.
func (s *Service) View(vm store.VM) api.VM {
	dir := s.dir(vm.ID)
	v := api.VM{
		ID: vm.ID, Name: vm.Name, State: vm.State, Image: vm.Image, Kernel: vm.Kernel, VMM: vm.VMM,
		VCPU: vm.VCPU, MemoryMiB: vm.MemoryMiB, DiskBytes: vm.DiskBytes, IP: vm.IP, MAC: vm.MAC,
		LastError: vm.LastError, CreatedAt: vm.CreatedAt, ConsoleLog: dir.ConsoleLog(), Dir: dir.Path(),
	}
	if in := s.instance(vm.ID); in != nil {
		v.PID = in.m.Handles().PID
		v.StartedFrom = s.startedFrom(vm.ID)
	}
	if np, err := s.netPolicy(context.Background(), vm.ID); err == nil {
		v.Net = &np
	}
	if sns, err := s.Store.ListSnapshots(context.Background(), vm.ID); err == nil {
		for _, sn := range sns {
			v.Snapshots++
			v.SnapshotBytes += sn.Bytes
		}
	}
	return v
}

// NotRunning is the error for an operation that needs vm running.
func NotRunning(vm store.VM) error {
	return api.Conflictf("vm %s is %s: start it with `banger vm start %s`", vm.Name, vm.State, vm.Name)
}
