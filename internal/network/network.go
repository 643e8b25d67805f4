// Package network is the host-network service: banger's DNS server for
// `.vm` names, the ssh_config file that follows the set of VMs, and
// `banger network show|teardown`. The bridge, NAT and TAP devices
// themselves are internal/hostnet's; this service decides when the DNS
// server runs and reports what banger added to the host.
//
// The DNS server starts with the bridge (an OnBridgeUp step of the first
// VM boot), never at daemon start on a host without running VMs: a
// daemon that only builds images must not touch the host's network.
package network

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banger-dev/banger/internal/api"
	bdns "github.com/banger-dev/banger/internal/dns"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/sshconfig"
)

// VM is what the network service needs to know of one VM.
type VM struct {
	Name    string
	IP      string // "" before an address is reserved
	Running bool   // the daemon runs it now (answers DNS only then)
}

// VMs is the VM service as the network service sees it.
type VMs interface {
	// NetworkVMs lists every VM.
	NetworkVMs(ctx context.Context) ([]VM, error)
	// HoldReservations keeps new VMs from being reserved until release
	// is called, and names the VMs that use the network now ("name
	// (state)"); teardown refuses while there are any.
	HoldReservations(ctx context.Context) (busy []string, release func(), err error)
}

// Deps are the service's dependencies.
type Deps struct {
	Bridge string // configured bridge name, for show
	Net    hostnet.Network
	VMs    VMs
	Log    *slog.Logger
	// SSHConfig is the file the service keeps in step with the VMs;
	// IdentityFile and KnownHosts are what its Host blocks name.
	SSHConfig, IdentityFile, KnownHosts string
	// Domains, when set, names the guest at a DNS client address, its
	// allowed domain rules and whether it is isolated (domains.go); nil:
	// no guest has any.
	Domains func(client netip.Addr) (tap string, rules []api.NetRule, isolated bool)
}

// Service is the running host-network service.
type Service struct {
	d       Deps
	started atomic.Bool
	dns     *bdns.Server
	names   atomic.Pointer[map[string]netip.Addr] // running VMs by name
	sshMu   sync.Mutex
}

// New returns a service; Start runs it.
func New(d Deps) *Service {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Service{d: d}
	empty := map[string]netip.Addr{}
	s.names.Store(&empty)
	s.dns = &bdns.Server{
		Lookup:    s.lookup,
		Upstreams: bdns.UpstreamSource(bdns.ResolvConf, d.Net.Gateway()),
		Log:       d.Log,
	}
	if d.Domains != nil {
		s.dns.OnAnswer = s.allowAnswer // domains.go
		s.dns.Refuse = s.refuseName
	}
	return s
}

// Start registers the DNS server with the bridge's start-up, publishes
// the running VMs and, after a daemon restart with VMs still running,
// brings back the bridge they use. stop closes the DNS server.
func (s *Service) Start(ctx context.Context) (stop func(), err error) {
	s.d.Net.OnBridgeUp(func(context.Context) error { return s.ensureDNS() })
	s.started.Store(true)
	if running := s.refresh(); running > 0 {
		if err := s.d.Net.EnsureBridge(ctx); err != nil {
			s.d.Log.Warn("restore host network for running VMs", "err", err)
		}
	}
	return func() {
		s.started.Store(false)
		s.dns.Close()
	}, nil
}

// Refresh follows a VM change (created, started, stopped, deleted, found
// dead): the DNS names and ssh_config. It does not block for long and
// takes no VM lock; before Start it does nothing.
func (s *Service) Refresh() {
	if s.started.Load() {
		s.refresh()
	}
}

func (s *Service) lookup(name string) (netip.Addr, bool) {
	a, ok := (*s.names.Load())[name]
	return a, ok
}

// ensureDNS starts the server unless it listens already.
func (s *Service) ensureDNS() error {
	if s.dns.Addr().IsValid() {
		return nil
	}
	if err := s.dns.Start(s.d.Net.DNSAddr()); err != nil {
		return err
	}
	s.d.Log.Info("dns listening", "addr", s.dns.Addr())
	return nil
}

// refresh rebuilds the name table from the running VMs and rewrites
// ssh_config; it returns how many VMs run.
func (s *Service) refresh() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	vms, err := s.d.VMs.NetworkVMs(ctx)
	if err != nil {
		s.d.Log.Warn("list vms for dns", "err", err)
		return 0
	}
	names := map[string]netip.Addr{}
	for _, vm := range vms {
		if !vm.Running {
			continue
		}
		if a, err := netip.ParseAddr(vm.IP); err == nil {
			names[strings.ToLower(vm.Name)] = a
		}
	}
	s.names.Store(&names)
	s.writeSSHConfig(vms)
	return len(names)
}

// writeSSHConfig keeps ~/.config/banger/ssh_config in step with the VMs:
// one Host block per VM naming its address, so `ssh <name>.vm` works
// through the user's Include even where nothing routes `.vm` names to
// banger's DNS. The daemon never touches ~/.ssh/config itself.
func (s *Service) writeSSHConfig(vms []VM) {
	s.sshMu.Lock()
	defer s.sshMu.Unlock()
	var hosts []sshconfig.Host
	for _, vm := range vms {
		if vm.IP != "" {
			hosts = append(hosts, sshconfig.Host{Name: vm.Name, Addr: vm.IP})
		}
	}
	body := sshconfig.Render(hosts, s.d.IdentityFile, s.d.KnownHosts)
	if old, err := os.ReadFile(s.d.SSHConfig); err == nil && bytes.Equal(old, body) {
		return
	}
	if err := sshconfig.WriteFile(s.d.SSHConfig, body); err != nil {
		s.d.Log.Warn("write ssh_config", "path", s.d.SSHConfig, "err", err)
	}
}

// Show lists everything banger added to the host's network, from the
// host itself (links by their "banger" alias, the nft table, the
// forwarding marker, resolved's link settings), plus the DNS listener.
func (s *Service) Show(ctx context.Context) (api.NetworkState, error) {
	out := api.NetworkState{
		Bridge: s.d.Bridge, Subnet: s.d.Net.Subnet().String(), Gateway: s.d.Net.Gateway().String(),
		Objects: []api.NetworkObject{},
	}
	st, err := s.d.Net.Show(ctx)
	if err != nil {
		return out, err
	}
	for _, o := range st.Objects {
		out.Objects = append(out.Objects, api.NetworkObject{Kind: o.Kind, Name: o.Name, Detail: o.Detail})
	}
	if s.dns.Addr().IsValid() {
		out.DNS = s.dns.Addr().String()
		out.Objects = append(out.Objects, api.NetworkObject{Kind: "dns", Name: "udp+tcp " + out.DNS,
			Detail: fmt.Sprintf("banger's DNS server (bangerd, pid %d); guests reach it on %s:53", os.Getpid(), out.Gateway)})
	}
	return out, nil
}

// Teardown removes everything when no VM uses the network. New VMs are
// kept from being reserved meanwhile; a VM reserved earlier counts as
// using it.
func (s *Service) Teardown(ctx context.Context) (api.NetworkTeardown, error) {
	busy, release, err := s.d.VMs.HoldReservations(ctx)
	if err != nil {
		return api.NetworkTeardown{}, err
	}
	defer release()
	if len(busy) > 0 {
		return api.NetworkTeardown{}, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf(
			"%d VM(s) still use the network: %s; stop or delete them first (`banger vm stop NAME`)",
			len(busy), strings.Join(busy, ", "))}
	}
	before, err := s.Show(ctx)
	if err != nil {
		return api.NetworkTeardown{}, err
	}
	s.dns.Close()
	ctx = context.WithoutCancel(ctx)
	terr := s.d.Net.Teardown(ctx)
	after, err := s.Show(ctx)
	if terr != nil {
		return api.NetworkTeardown{}, fmt.Errorf("network teardown: %w", terr)
	}
	if err != nil {
		return api.NetworkTeardown{}, err
	}
	left := map[string]bool{}
	for _, o := range after.Objects {
		left[o.Kind+" "+o.Name] = true
	}
	res := api.NetworkTeardown{Removed: []api.NetworkObject{}, Left: after.Objects}
	for _, o := range before.Objects {
		if !left[o.Kind+" "+o.Name] {
			res.Removed = append(res.Removed, o)
		}
	}
	s.d.Log.Info("host change", "op", "network teardown", "removed", len(res.Removed), "left", len(res.Left))
	return res, nil
}
