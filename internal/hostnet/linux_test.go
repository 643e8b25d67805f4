package hostnet

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// enterNetns moves the calling test goroutine, locked to its OS thread,
// into a fresh network namespace, and moves it back at cleanup. Every
// netlink call of the test must stay on this goroutine (no t.Run, no
// goroutines), so the host's own namespace is never touched.
func enterNetns(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// Keep the thread locked: it is discarded when the goroutine ends.
			t.Errorf("restore netns: %v", err)
			return
		}
		ns.Close()
		orig.Close()
		runtime.UnlockOSThread()
	})
	if cur, err := netns.Get(); err != nil || !cur.Equal(ns) || cur.Equal(orig) {
		t.Fatalf("not inside the new namespace (err %v)", err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("fresh namespace has links %v: refusing to continue", links)
	}
	// A new namespace copies ip_forward from the host's (init) namespace,
	// so what a test finds here depends on the machine: on with Docker,
	// libvirt or a banger that ran before. Start every namespace with
	// forwarding on, as on those machines, so a test that needs it off
	// and does not say so (setForward) fails everywhere, not only there.
	setForward(t, "1")
}

// setForward sets net.ipv4.ip_forward of the test's own namespace (the
// file reflects the namespace of the locked thread that opens it).
func setForward(t *testing.T, v string) {
	t.Helper()
	if err := os.WriteFile(ipForward, []byte(v+"\n"), 0o644); err != nil {
		t.Fatalf("set ip_forward=%s in the test namespace: %v", v, err)
	}
	if got := readForward(t); got != v {
		t.Fatalf("ip_forward in the test namespace = %s after writing %s", got, v)
	}
}

// newTestNet acts on the namespace current when it is called (the
// test's); cleanup stops its pool filler and releases the namespace.
func newTestNet(t *testing.T, subnet string) *Linux {
	return newTestNetConfig(t, Config{Bridge: "bgtest0", Subnet: netip.MustParsePrefix(subnet), DNSPort: 42069})
}

func newTestNetConfig(t *testing.T, cfg Config) *Linux {
	if cfg.DNSPort == 0 {
		cfg.DNSPort = 42069
	}
	n := NewLinux(cfg, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		n.poolMu.Lock()
		n.poolOff = true
		n.poolMu.Unlock()
		n.fillWG.Wait()
		n.Close()
	})
	return n
}

func link(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func ipv4Addrs(t *testing.T, l netlink.Link) []string {
	t.Helper()
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		out = append(out, a.IPNet.String())
	}
	return out
}

func isUp(l netlink.Link) bool { return l.Attrs().Flags&net.FlagUp != 0 }

func TestBridgeAndTAPLifecycle(t *testing.T) {
	enterNetns(t)
	ctx := context.Background()
	n := newTestNet(t, "10.77.0.0/24")
	for i := 0; i < 2; i++ {
		if err := n.EnsureBridge(ctx); err != nil {
			t.Fatalf("EnsureBridge #%d: %v", i+1, err)
		}
	}
	br := link(t, "bgtest0")
	if br.Type() != "bridge" || !isUp(br) {
		t.Fatalf("bridge type %s up=%v", br.Type(), isUp(br))
	}
	if got := ipv4Addrs(t, br); len(got) != 1 || got[0] != "10.77.0.1/24" {
		t.Fatalf("bridge addresses %v, want exactly [10.77.0.1/24]", got)
	}

	if n.TAPExists("bgtap0") {
		t.Fatal("TAPExists before CreateTAP")
	}
	if err := n.CreateTAP(ctx, "bgtap0"); err != nil {
		t.Fatalf("CreateTAP: %v", err)
	}
	tap := link(t, "bgtap0")
	if tap.Type() != "tuntap" || tap.Attrs().MasterIndex != br.Attrs().Index || !isUp(tap) {
		t.Fatalf("tap type %s master %d (bridge %d) up=%v", tap.Type(), tap.Attrs().MasterIndex, br.Attrs().Index, isUp(tap))
	}
	if tt, ok := tap.(*netlink.Tuntap); !ok || tt.Mode != netlink.TUNTAP_MODE_TAP {
		t.Fatalf("link is %#v, want a TAP", tap)
	}
	if !n.TAPExists("bgtap0") {
		t.Fatal("TAPExists = false after CreateTAP")
	}

	// A stale TAP (detached from the bridge and down, as after a crash)
	// is replaced by a fresh one on the bridge.
	if err := netlink.LinkSetNoMaster(tap); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetDown(tap); err != nil {
		t.Fatal(err)
	}
	if err := n.CreateTAP(ctx, "bgtap0"); err != nil {
		t.Fatalf("CreateTAP over a stale TAP: %v", err)
	}
	fresh := link(t, "bgtap0")
	if fresh.Attrs().Index == tap.Attrs().Index {
		t.Fatal("stale TAP was not replaced")
	}
	if fresh.Attrs().MasterIndex != br.Attrs().Index || !isUp(fresh) {
		t.Fatalf("replacement TAP master %d up=%v", fresh.Attrs().MasterIndex, isUp(fresh))
	}

	for i := 0; i < 2; i++ {
		if err := n.DeleteTAP(ctx, "bgtap0"); err != nil {
			t.Fatalf("DeleteTAP #%d: %v", i+1, err)
		}
	}
	if n.TAPExists("bgtap0") {
		t.Fatal("TAPExists after DeleteTAP")
	}
	if _, err := netlink.LinkByName("bgtest0"); err != nil {
		t.Fatalf("DeleteTAP removed the bridge: %v", err)
	}
}

func TestEnsureBridgeRepairs(t *testing.T) {
	enterNetns(t)
	ctx := context.Background()
	n := newTestNet(t, "10.78.0.0/16")
	if err := n.EnsureBridge(ctx); err != nil {
		t.Fatal(err)
	}
	br := link(t, "bgtest0")
	addr, err := netlink.ParseAddr("10.78.0.1/16")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrDel(br, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetDown(br); err != nil {
		t.Fatal(err)
	}
	if err := n.EnsureBridge(ctx); err != nil {
		t.Fatalf("EnsureBridge repair: %v", err)
	}
	br = link(t, "bgtest0")
	if got := ipv4Addrs(t, br); len(got) != 1 || got[0] != "10.78.0.1/16" || !isUp(br) {
		t.Fatalf("after repair: addresses %v up=%v", got, isUp(br))
	}
}

func TestEnsureBridgeRefusesNonBridge(t *testing.T) {
	enterNetns(t)
	ctx := context.Background()
	n := newTestNet(t, "10.79.0.0/24")
	if err := netlink.LinkAdd(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "bgtest0"}, Mode: netlink.TUNTAP_MODE_TAP}); err != nil {
		t.Fatal(err)
	}
	err := n.EnsureBridge(ctx)
	if err == nil || !strings.Contains(err.Error(), "not a bridge") {
		t.Fatalf("EnsureBridge over a TAP named like the bridge = %v, want a not-a-bridge error", err)
	}
}

func TestCreateTAPWithoutBridge(t *testing.T) {
	enterNetns(t)
	n := newTestNet(t, "10.80.0.0/24")
	err := n.CreateTAP(context.Background(), "bgtap1")
	if err == nil || !strings.Contains(err.Error(), "bgtest0") {
		t.Fatalf("CreateTAP without a bridge = %v, want an error naming the bridge", err)
	}
	if n.TAPExists("bgtap1") {
		t.Fatal("a TAP was left behind")
	}
}

// addUplink adds a link carrying routes: a dummy link where the kernel
// has the module, else one end of a veth pair.
func addUplink(t *testing.T) netlink.Link {
	t.Helper()
	var l netlink.Link = &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}}
	if err := netlink.LinkAdd(l); err != nil {
		t.Logf("dummy link unavailable (%v); using a veth pair", err)
		l = &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0"}, PeerName: "uplink0p"}
		if err := netlink.LinkAdd(l); err != nil {
			t.Fatalf("add veth: %v", err)
		}
	}
	up := link(t, "uplink0")
	if err := netlink.LinkSetUp(up); err != nil {
		t.Fatal(err)
	}
	return up
}

func TestEnsureBridgeRefusesOverlappingRoute(t *testing.T) {
	enterNetns(t)
	ctx := context.Background()
	up := addUplink(t)
	addr, _ := netlink.ParseAddr("10.99.0.5/24") // kernel route 10.99.0.0/24
	if err := netlink.AddrAdd(up, addr); err != nil {
		t.Fatal(err)
	}
	_, dst, _ := net.ParseCIDR("172.31.8.0/22")
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		subnet    string
		wantRoute string // "" = accepted
	}{
		{"10.99.0.0/24", "10.99.0.0/24"},
		{"10.99.0.0/16", "10.99.0.0/24"},   // contains the route
		{"10.99.0.128/29", "10.99.0.0/24"}, // inside the route
		{"172.31.10.0/24", "172.31.8.0/22"},
		{"10.98.0.0/24", ""},
		{"172.31.12.0/24", ""},
	}
	for _, tt := range tests {
		n := newTestNet(t, tt.subnet)
		err := n.EnsureBridge(ctx)
		if tt.wantRoute == "" {
			if err != nil {
				t.Errorf("subnet %s: EnsureBridge = %v, want success", tt.subnet, err)
			}
			netlink.LinkDel(link(t, "bgtest0"))
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "overlaps the host route "+tt.wantRoute) || !strings.Contains(err.Error(), tt.subnet) {
			t.Errorf("subnet %s: EnsureBridge = %v, want a refusal naming route %s", tt.subnet, err, tt.wantRoute)
		}
		if _, err := netlink.LinkByName("bgtest0"); err == nil {
			t.Errorf("subnet %s: bridge created despite the clash", tt.subnet)
		}
	}
}

func TestGatewayOf(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"10.77.0.0/24", "10.77.0.1"},
		{"10.77.0.200/24", "10.77.0.1"}, // masked first
		{"192.168.8.0/29", "192.168.8.1"},
		{"172.16.0.0/16", "172.16.0.1"},
	}
	for _, tt := range tests {
		if got := GatewayOf(netip.MustParsePrefix(tt.prefix)); got.String() != tt.want {
			t.Errorf("GatewayOf(%s) = %s, want %s", tt.prefix, got, tt.want)
		}
	}
	n := newTestNet(t, "10.5.6.0/24")
	if n.Gateway().String() != "10.5.6.1" || n.Subnet().String() != "10.5.6.0/24" {
		t.Fatalf("Gateway/Subnet = %s %s", n.Gateway(), n.Subnet())
	}
}
