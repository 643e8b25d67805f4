package daemon

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/banger-dev/banger/internal/api"
	bdns "github.com/banger-dev/banger/internal/dns"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/sshconfig"
)

// newNetHarness is a harness whose fake network has a loopback subnet, so
// the real DNS server can bind its gateway, on a free port.
func newNetHarness(t *testing.T) *harness {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	must(t, os.WriteFile(conf, []byte("nameserver 127.0.0.1\n"), 0o644)) // never queried here
	old := bdns.ResolvConf
	bdns.ResolvConf = conf
	t.Cleanup(func() { bdns.ResolvConf = old })

	n := hostnet.NewFake(netip.MustParsePrefix("127.77.0.0/24"))
	n.RunHooks = true
	n.Cfg.DNSPort = freePort(t)
	return newHarnessOn(t, n)
}

func freePort(t *testing.T) int {
	pc, err := net.ListenPacket("udp4", "127.77.0.1:0")
	must(t, err)
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func lookupA(t *testing.T, h *harness, name string) (int, string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, h.net.DNSAddr().String())
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	if len(r.Answer) == 1 {
		return r.Rcode, r.Answer[0].(*dns.A).A.String()
	}
	return r.Rcode, ""
}

func TestNetworkDNSFollowsVMsAndTeardown(t *testing.T) {
	h := newNetHarness(t)
	vm := h.create("dev")
	if rc, ip := lookupA(t, h, "dev.vm."); rc != dns.RcodeSuccess || ip != vm.IP {
		t.Fatalf("dev.vm = %s %q, want %s", dns.RcodeToString[rc], ip, vm.IP)
	}
	if rc, _ := lookupA(t, h, "other.vm."); rc != dns.RcodeNameError {
		t.Errorf("other.vm rcode %s", dns.RcodeToString[rc])
	}
	b, err := os.ReadFile(sshconfig.BangerConfigPath(h.paths.ConfigDir))
	must(t, err)
	if !strings.Contains(string(b), "Host dev.vm\n    HostName "+vm.IP+"\n") {
		t.Errorf("ssh_config:\n%s", b)
	}

	var st api.NetworkState
	must(t, h.call(api.MethodNetworkShow, nil, &st))
	if st.DNS != h.net.DNSAddr().String() || !hasObject(st.Objects, "dns") || !hasObject(st.Objects, "link") {
		t.Errorf("network show: %+v", st)
	}
	if err := h.call(api.MethodNetworkTeardown, nil, nil); !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "dev (running)") {
		t.Errorf("teardown with a running VM: %v", err)
	}

	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	if rc, _ := lookupA(t, h, "dev.vm."); rc != dns.RcodeNameError {
		t.Errorf("stopped dev.vm rcode %s, want NXDOMAIN", dns.RcodeToString[rc])
	}
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "dev"}, nil))
	b, _ = os.ReadFile(sshconfig.BangerConfigPath(h.paths.ConfigDir))
	if strings.Contains(string(b), "dev.vm\n") {
		t.Errorf("deleted VM still in ssh_config:\n%s", b)
	}
	var td api.NetworkTeardown
	must(t, h.call(api.MethodNetworkTeardown, nil, &td))
	if !hasObject(td.Removed, "dns") || len(td.Left) != 0 || h.net.Bridge {
		t.Errorf("teardown: %+v bridge=%v", td, h.net.Bridge)
	}
	pc, err := net.ListenPacket("udp4", h.net.DNSAddr().String())
	if err != nil {
		t.Fatalf("DNS port still bound after teardown: %v", err)
	}
	pc.Close()

	// The next VM brings it all back.
	vm = h.create("again")
	if _, ip := lookupA(t, h, "again.vm."); ip != vm.IP {
		t.Errorf("again.vm = %q after re-setup", ip)
	}
}

func TestNetworkDNSPortInUseFailsCreateCleanly(t *testing.T) {
	h := newNetHarness(t)
	held, err := net.ListenPacket("udp4", h.net.DNSAddr().String())
	must(t, err)
	defer held.Close()
	err = h.call(api.MethodVMCreate, api.CreateParams{Name: "dev"}, nil)
	if err == nil || !strings.Contains(err.Error(), "in use by pid") {
		t.Fatalf("create with the DNS port held: %v", err)
	}
	if h.net.Bridge || h.net.TAPCount() != 0 || h.drv.Starts != 0 {
		t.Errorf("half-applied: bridge=%v taps=%d starts=%d", h.net.Bridge, h.net.TAPCount(), h.drv.Starts)
	}
}

func hasObject(objs []api.NetworkObject, kind string) bool {
	for _, o := range objs {
		if o.Kind == kind {
			return true
		}
	}
	return false
}
