package daemon

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bdns "github.com/banger-dev/banger/internal/dns"
)

// The network service: banger's DNS server and the files that follow the
// set of VMs (ssh_config). The DNS server starts with the bridge (an
// OnBridgeUp step of the first VM boot), never at daemon start on a host
// without running VMs: a daemon that only builds images must not touch
// the host's network.

// netState is the network service's state (Daemon.netSvc while it runs).
type netState struct {
	dns   *bdns.Server
	names atomic.Pointer[map[string]netip.Addr] // running VMs by name
	sshMu sync.Mutex
}

func netOf(d *Daemon) *netState { return d.netSvc.Load() }

func init() {
	services = append(services, startNetService)
	vmChanged = append(vmChanged, func(d *Daemon) {
		if s := netOf(d); s != nil {
			s.refresh(d)
		}
	})
}

func startNetService(ctx context.Context, d *Daemon) (func(), error) {
	s := &netState{}
	empty := map[string]netip.Addr{}
	s.names.Store(&empty)
	s.dns = &bdns.Server{
		Lookup:    s.lookup,
		Upstreams: bdns.UpstreamSource(bdns.ResolvConf, d.net.Gateway()),
		Log:       d.log,
	}
	d.netSvc.Store(s)
	d.net.OnBridgeUp(func(context.Context) error { return s.ensureDNS(d) })
	running := s.refresh(d)
	// After a restart with VMs still running, bring back what they use.
	if running > 0 {
		if err := d.net.EnsureBridge(ctx); err != nil {
			d.log.Warn("restore host network for running VMs", "err", err)
		}
	}
	return func() {
		s.dns.Close()
		d.netSvc.Store(nil)
	}, nil
}

func (s *netState) lookup(name string) (netip.Addr, bool) {
	a, ok := (*s.names.Load())[name]
	return a, ok
}

// ensureDNS starts the server unless it listens already.
func (s *netState) ensureDNS(d *Daemon) error {
	if s.dns.Addr().IsValid() {
		return nil
	}
	if err := s.dns.Start(d.net.DNSAddr()); err != nil {
		return err
	}
	d.log.Info("dns listening", "addr", s.dns.Addr())
	return nil
}

// refresh rebuilds the name table from the running VMs and rewrites
// ssh_config; it returns how many VMs run.
func (s *netState) refresh(d *Daemon) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		d.log.Warn("list vms for dns", "err", err)
		return 0
	}
	names := map[string]netip.Addr{}
	for _, vm := range vms {
		if d.instance(vm.ID) == nil {
			continue
		}
		if a, err := netip.ParseAddr(vm.IP); err == nil {
			names[strings.ToLower(vm.Name)] = a
		}
	}
	s.names.Store(&names)
	s.writeSSHConfig(d, vms)
	return len(names)
}
