package hostnet

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// A guest in these tests is a network namespace joined to the bridge by a
// veth pair whose bridge end has a VM TAP's name: the rules match the
// bridge port by name, so it stands for a TAP with a VM behind it.
type testGuest struct {
	ns  netns.NsHandle
	g   Guest
	dev netlink.Link // the guest's end, in ns
}

// withNS runs fn with the test's locked thread in ns, then moves it back
// to home; sockets fn opens stay in ns.
func withNS(t *testing.T, home, ns netns.NsHandle, fn func()) {
	t.Helper()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(home); err != nil {
			t.Fatalf("back to the test namespace: %v", err)
		}
	}()
	fn()
}

func newNS(t *testing.T, home netns.NsHandle) netns.NsHandle {
	t.Helper()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(home); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func addGuest(t *testing.T, home netns.NsHandle, bridge, tap, mac, ip, gw string) *testGuest {
	t.Helper()
	ns := newNS(t, home)
	must(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: tap}, PeerName: "eth0" + tap[len(tap)-1:]}))
	peer := link(t, "eth0"+tap[len(tap)-1:])
	must(t, netlink.LinkSetNsFd(peer, int(ns)))
	must(t, netlink.LinkSetMaster(link(t, tap), link(t, bridge)))
	must(t, netlink.LinkSetUp(link(t, tap)))
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dev, err := h.LinkByName(peer.Attrs().Name)
	if err != nil {
		t.Fatal(err)
	}
	hw, _ := net.ParseMAC(mac)
	must(t, h.LinkSetHardwareAddr(dev, hw))
	addr, _ := netlink.ParseAddr(ip + "/24")
	must(t, h.AddrAdd(dev, addr))
	must(t, h.LinkSetUp(dev))
	lo, _ := h.LinkByName("lo")
	must(t, h.LinkSetUp(lo))
	must(t, h.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}))
	return &testGuest{ns: ns, dev: dev, g: Guest{TAP: tap, MAC: mac, IP: netip.MustParseAddr(ip)}}
}

// listenUDP opens a UDP socket on addr in ns.
func listenUDP(t *testing.T, home, ns netns.NsHandle, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	withNS(t, home, ns, func() {
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		c = pc.(*net.UDPConn)
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// reaches sends a datagram from src (an address in ns, "" for any) to
// dst and reports whether l received it.
func reaches(t *testing.T, home, ns netns.NsHandle, src, dst string, l *net.UDPConn) bool {
	t.Helper()
	msg := "probe " + time.Now().Format(time.RFC3339Nano)
	withNS(t, home, ns, func() {
		var la *net.UDPAddr
		if src != "" {
			la = &net.UDPAddr{IP: net.ParseIP(src)}
		}
		ra, _ := net.ResolveUDPAddr("udp4", dst)
		c, err := net.DialUDP("udp4", la, ra)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A few tries: the first may wait for ARP.
		for range 3 {
			c.Write([]byte(msg))
			time.Sleep(50 * time.Millisecond)
		}
	})
	buf := make([]byte, 128)
	deadline := time.Now().Add(700 * time.Millisecond)
	for {
		l.SetReadDeadline(deadline)
		n, _, err := l.ReadFrom(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == msg {
			return true
		}
	}
}

func TestGuestRulesAgainstTraffic(t *testing.T) {
	enterNetns(t)
	home, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	ctx := context.Background()
	n := newTestNetConfig(t, Config{Bridge: "bgtest0", Subnet: netip.MustParsePrefix("10.77.0.0/24"), PoolSize: -1})
	must(t, n.EnsureBridge(ctx))
	defer n.Teardown(ctx)
	const gw = "10.77.0.1"

	// The bridge has no IPv6: no link-local address for guests to reach
	// the host's [::] services on, no router advertisements accepted.
	for _, kv := range [][2]string{{"accept_ra", "0"}, {"disable_ipv6", "1"}} {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/bgtest0/" + kv[0])
		if err != nil || strings.TrimSpace(string(b)) != kv[1] {
			t.Errorf("bridge %s = %q (%v), want %s", kv[0], b, err, kv[1])
		}
	}

	// "Upstream": a namespace beyond the host with a private address and
	// a public one (TEST-NET-2, outside every range nat keeps guests off).
	up := newNS(t, home)
	must(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "upl0"}, PeerName: "upl1"}))
	must(t, netlink.LinkSetNsFd(link(t, "upl1"), int(up)))
	for _, a := range []string{"172.30.99.1/24", "198.51.100.1/24"} {
		ad, _ := netlink.ParseAddr(a)
		must(t, netlink.AddrAdd(link(t, "upl0"), ad))
	}
	must(t, netlink.LinkSetUp(link(t, "upl0")))
	uh, _ := netlink.NewHandleAt(up)
	u1, _ := uh.LinkByName("upl1")
	for _, a := range []string{"172.30.99.2/24", "198.51.100.2/24"} {
		ad, _ := netlink.ParseAddr(a)
		must(t, uh.AddrAdd(u1, ad))
	}
	must(t, uh.LinkSetUp(u1))
	uh.Close()
	private := listenUDP(t, home, up, "172.30.99.2:9000")
	public := listenUDP(t, home, up, "198.51.100.2:9000")

	a := addGuest(t, home, "bgtest0", "bgtaaa1", "02:00:00:00:00:0a", "10.77.0.10", gw)
	b := addGuest(t, home, "bgtest0", "bgtbbb2", "02:00:00:00:00:0b", "10.77.0.11", gw)
	host := listenUDP(t, home, home, gw+":42069") // banger's DNS port: guests may reach it
	atB := listenUDP(t, home, b.ns, "10.77.0.11:9000")

	// Before its rules are applied a TAP gets nothing through.
	if reaches(t, home, a.ns, "", gw+":42069", host) {
		t.Fatal("a TAP without guest rules reached the host")
	}
	must(t, n.ApplyGuest(ctx, a.g))
	must(t, n.ApplyGuest(ctx, b.g))
	if !reaches(t, home, a.ns, "", gw+":42069", host) {
		t.Fatalf("guest a cannot reach banger's DNS port on the gateway:\n%s", nftRuleset(t))
	}
	// Default nat: the public internet, no private range, no other guest.
	if !reaches(t, home, a.ns, "", "198.51.100.2:9000", public) {
		t.Fatalf("nat guest cannot reach a public address:\n%s", nftRuleset(t))
	}
	if reaches(t, home, a.ns, "", "172.30.99.2:9000", private) {
		t.Fatal("nat guest reached a private address")
	}
	if reaches(t, home, a.ns, "", "10.77.0.11:9000", atB) {
		t.Fatal("guest a reached guest b, not in a group")
	}
	// Spoofing: another source address, then another MAC.
	h, _ := netlink.NewHandleAt(a.ns)
	defer h.Close()
	spoof, _ := netlink.ParseAddr("10.77.0.99/24")
	must(t, h.AddrAdd(a.dev, spoof))
	if reaches(t, home, a.ns, "10.77.0.99", gw+":42069", host) {
		t.Fatal("a guest sending with a foreign source address got through")
	}
	must(t, h.AddrDel(a.dev, spoof))
	hw, _ := net.ParseMAC("02:00:00:00:00:0b") // b's
	must(t, h.LinkSetHardwareAddr(a.dev, hw))
	if reaches(t, home, a.ns, "", gw+":42069", host) {
		t.Fatal("a guest sending with another guest's MAC got through")
	}
	orig, _ := net.ParseMAC(a.g.MAC)
	must(t, h.LinkSetHardwareAddr(a.dev, orig))

	// An allow for the private range; then isolated, which keeps the
	// allow and drops the rest.
	a.g.Egress = Egress{Allow: []Dest{{Prefix: netip.MustParsePrefix("172.30.99.0/24"), Port: 9000}}}
	must(t, n.ApplyGuest(ctx, a.g))
	if !reaches(t, home, a.ns, "", "172.30.99.2:9000", private) {
		t.Fatalf("allowed private range unreachable:\n%s", nftRuleset(t))
	}
	a.g.Egress.Isolated = true
	must(t, n.ApplyGuest(ctx, a.g))
	if reaches(t, home, a.ns, "", "198.51.100.2:9000", public) {
		t.Fatal("isolated guest reached a public address")
	}
	if !reaches(t, home, a.ns, "", "172.30.99.2:9000", private) {
		t.Fatal("isolated guest lost its allowed range")
	}
	// A deny wins over nat's public internet.
	a.g.Egress = Egress{Deny: []Dest{{Prefix: netip.MustParsePrefix("198.51.100.0/24")}}}
	must(t, n.ApplyGuest(ctx, a.g))
	if reaches(t, home, a.ns, "", "198.51.100.2:9000", public) {
		t.Fatal("denied range reached")
	}
	// Domain answers: an address set with a timeout.
	a.g.Egress = Egress{Isolated: true, DomainPorts: []uint16{0}}
	must(t, n.ApplyGuest(ctx, a.g))
	if reaches(t, home, a.ns, "", "198.51.100.2:9000", public) {
		t.Fatal("isolated guest with an empty domain set reached a public address")
	}
	must(t, n.AllowResolved(ctx, a.g.TAP, 0, []netip.Addr{netip.MustParseAddr("198.51.100.2")}, 2*time.Second))
	if !reaches(t, home, a.ns, "", "198.51.100.2:9000", public) {
		t.Fatalf("resolved address unreachable:\n%s", nftRuleset(t))
	}
	time.Sleep(2500 * time.Millisecond)
	if reaches(t, home, a.ns, "", "198.51.100.2:9000", public) {
		t.Fatal("resolved address still reachable after its TTL")
	}

	// A group: a and b reach each other.
	a.g.Egress, a.g.Peers = Egress{}, []string{b.g.TAP}
	must(t, n.ApplyGuest(ctx, a.g))
	// The earlier attempt left a's ARP entry for b failed: let it retry.
	if !reaches(t, home, a.ns, "", "10.77.0.11:9000", atB) && !reaches(t, home, a.ns, "", "10.77.0.11:9000", atB) {
		t.Fatalf("guests of one group cannot reach each other:\n%s", nftRuleset(t))
	}
	// Releasing b's TAP removes its rules, the group's too (DeleteTAP
	// starts with this; it refuses to delete the veth standing in here).
	n.removeGuest(ctx, b.g.TAP)
	if rs := nftRuleset(t); strings.Contains(rs, b.g.TAP) {
		t.Fatalf("rules of a released TAP remain:\n%s", rs)
	}
	if reaches(t, home, b.ns, "", gw+":42069", host) {
		t.Fatal("a released TAP still gets through")
	}
}
