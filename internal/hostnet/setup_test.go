package hostnet

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestMain doubles as the privileged helper: the sudo stand-in of
// TestSudoHelper runs this test binary as `<bin> priv OP`, as the daemon
// runs bangerd.
func TestMain(m *testing.M) {
	if os.Getenv("HOSTNET_PRIV_HELPER") == "1" {
		if len(os.Args) != 3 || os.Args[1] != "priv" {
			fmt.Fprintln(os.Stderr, "helper: bad argv", os.Args)
			os.Exit(2)
		}
		if err := PrivMain(os.Args[2], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// readForward reads net.ipv4.ip_forward of the calling thread's namespace.
func readForward(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// hostForward reads it on another goroutine, which runs on a thread of
// the host's namespace (the test's thread is locked in its own).
func hostForward(t *testing.T) string {
	c := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(ipForward)
		c <- strings.TrimSpace(string(b))
	}()
	return <-c
}

// nftRuleset is `nft list ruleset` of the test's namespace (the child
// inherits the locked thread's namespace).
func nftRuleset(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v\n%s", err, out)
	}
	return string(out)
}

func linkNames(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

func waitPool(n *Linux) { n.fillWG.Wait() }

func TestEnsureSetsUpNATForwardingAndPool(t *testing.T) {
	enterNetns(t)
	ctx := context.Background()
	hostBefore := hostForward(t)
	setForward(t, "0") // a host with forwarding off: banger turns it on, and off again
	n := newTestNet(t, "10.77.0.0/24")
	if err := n.EnsureBridge(ctx); err != nil {
		t.Fatal(err)
	}
	waitPool(n)
	if a := link(t, "bgtest0").Attrs().Alias; a != Alias {
		t.Errorf("bridge alias %q", a)
	}
	if got := readForward(t); got != "1" {
		t.Errorf("ip_forward in the namespace = %s, want 1", got)
	}
	if got := hostForward(t); got != hostBefore {
		t.Fatalf("the host's ip_forward changed: %s → %s", hostBefore, got)
	}
	rs := nftRuleset(t)
	for _, want := range []string{
		"table ip banger",
		"type nat hook postrouting priority srcnat",
		"ip saddr 10.77.0.0/24 ip daddr != 10.77.0.0/24 masquerade",
		`iifname "bgtest0" ip daddr 10.77.0.1 udp dport 53 dnat to 10.77.0.1:42069`,
		`iifname "bgtest0" ip daddr 10.77.0.1 tcp dport 53 dnat to 10.77.0.1:42069`,
		"ip daddr 10.77.0.1 udp dport 53 dnat to 10.77.0.1:42069",
		"type nat hook output priority -100",
		`comment "banger: masquerade guest traffic from 10.77.0.0/24 leaving the subnet"`,
		"chain " + fwdMarker,
		"type filter hook input priority filter",
		`iifname "bgtest0" ct state established,related accept`,
		`iifname "bgtest0" udp dport 42069 accept`,
		`iifname "bgtest0" tcp dport 42069 accept`,
		`iifname "bgtest0" icmp type echo-request accept`,
		`iifname "bgtest0" drop comment "banger: guests reach nothing else on the host`,
		"type filter hook forward priority filter",
		`iifname "bgtest0" ip daddr 169.254.0.0/16 drop`,
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	for _, p := range []string{"bgp0", "bgp1"} {
		l := link(t, p)
		if l.Type() != "tuntap" || l.Attrs().MasterIndex != link(t, "bgtest0").Attrs().Index || isUp(l) || l.Attrs().Alias != Alias {
			t.Errorf("pool TAP %s: type %s master %d up %v alias %q", p, l.Type(), l.Attrs().MasterIndex, isUp(l), l.Attrs().Alias)
		}
	}

	// Idempotent: a second ensure changes nothing (same rule handles).
	c, _ := nftables.New()
	before, _, _ := tableChains(c)
	if err := n.EnsureBridge(ctx); err != nil {
		t.Fatal(err)
	}
	after, _, _ := tableChains(c)
	if before["postrouting"][0].Handle != after["postrouting"][0].Handle {
		t.Error("second EnsureBridge rebuilt the table")
	}

	st, err := n.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range st.Objects {
		kinds = append(kinds, o.Kind+" "+o.Name)
	}
	for _, want := range []string{"link bgtest0", "address 10.77.0.1/24", "route 10.77.0.0/24", "link bgp0", "link bgp1",
		"nft-table ip banger", "nft-chain banger postrouting", "nft-chain banger prerouting", "nft-chain banger output", "nft-chain banger input", "nft-chain banger forward", "sysctl net.ipv4.ip_forward"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("Show lacks %q: %v", want, kinds)
		}
	}

	// The host's own DNS query to gateway:53 reaches banger's port (local
	// delivery needs lo up, as on any host).
	must(t, netlink.LinkSetUp(link(t, "lo")))
	checkRedirect(t, "10.77.0.1", 42069)

	if err := n.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t)
	if st, _ := n.Show(ctx); !st.Empty() {
		t.Errorf("Show after teardown: %v", st.Objects)
	}
}

// guests_reach_host = true: no input filter and no link-local filter;
// switching it rebuilds the
// table in place.
func TestGuestsReachHostDropsTheInputFilter(t *testing.T) {
	enterNetns(t)
	setForward(t, "0") // assertNothingLeft expects it off again
	ctx := context.Background()
	n := newTestNet(t, "10.77.0.0/24")
	must(t, n.EnsureBridge(ctx))
	if rs := nftRuleset(t); !strings.Contains(rs, "hook input") {
		t.Fatalf("default ruleset has no input filter:\n%s", rs)
	}
	open := newTestNetConfig(t, Config{Bridge: "bgtest0", Subnet: netip.MustParsePrefix("10.77.0.0/24"), GuestsReachHost: true})
	must(t, open.EnsureBridge(ctx))
	// The egress filter (forward) stays: guests_reach_host is about the
	// host, not about what guests reach beyond it.
	if rs := nftRuleset(t); strings.Contains(rs, "hook input") || strings.Contains(rs, "link-local") ||
		!strings.Contains(rs, "masquerade") || !strings.Contains(rs, "jump guests") {
		t.Fatalf("guests_reach_host ruleset:\n%s", rs)
	}
	must(t, open.Teardown(ctx))
	assertNothingLeft(t)
}

// checkRedirect sends a UDP datagram to gw:53 and expects it on gw:port.
func checkRedirect(t *testing.T, gw string, port int) {
	t.Helper()
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(gw), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("udp4", gw+":53")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	l.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	n, _, err := l.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("datagram to %s:53 did not reach port %d: %v", gw, port, err)
	}
}

// assertNothingLeft checks the namespace is as fresh: lo only, no routes,
// no nft tables, forwarding off (tests using it start with setForward(t, "0")).
func assertNothingLeft(t *testing.T) {
	t.Helper()
	if got := linkNames(t); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("links left: %v", got)
	}
	routes, _ := netlink.RouteList(nil, netlink.FAMILY_V4)
	if len(routes) != 0 {
		t.Errorf("routes left: %v", routes)
	}
	if rs := strings.TrimSpace(nftRuleset(t)); rs != "" {
		t.Errorf("nft ruleset left:\n%s", rs)
	}
	if got := readForward(t); got != "0" {
		t.Errorf("ip_forward left at %s", got)
	}
}

func TestEnsureBadInputLeavesNothing(t *testing.T) {
	enterNetns(t)
	setForward(t, "0") // assertNothingLeft expects it off again
	ctx := context.Background()

	// A bridge of that name that banger did not create.
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "bgtest0"}}); err != nil {
		t.Fatal(err)
	}
	n := newTestNet(t, "10.77.0.0/24")
	err := n.EnsureBridge(ctx)
	if err == nil || !strings.Contains(err.Error(), "was not created by banger") {
		t.Fatalf("foreign bridge: %v", err)
	}
	if !slices.Equal(linkNames(t), []string{"bgtest0", "lo"}) || nftRuleset(t) != "" || readForward(t) != "0" {
		t.Fatalf("half-applied after refusing a foreign bridge: links %v ruleset %q", linkNames(t), nftRuleset(t))
	}
	netlink.LinkDel(link(t, "bgtest0"))

	// A step after the bridge fails (the DNS server could not start):
	// everything this call created goes again.
	n = newTestNet(t, "10.77.0.0/24")
	n.OnBridgeUp(func(context.Context) error { return errors.New("dns: port 42069 in use") })
	if err := n.EnsureBridge(ctx); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("failing hook: %v", err)
	}
	waitPool(n)
	assertNothingLeft(t)
}

func TestCreateTAPTakesFromPoolAndReturns(t *testing.T) {
	enterNetns(t)
	setForward(t, "0") // assertNothingLeft expects it off again
	ctx := context.Background()
	n := newTestNet(t, "10.77.0.0/24")
	must(t, n.EnsureBridge(ctx))
	waitPool(n)
	pooled := link(t, "bgp0").Attrs().Index
	start := time.Now()
	must(t, n.CreateTAP(ctx, "bgtvm1"))
	took := time.Since(start)
	vm := link(t, "bgtvm1")
	if vm.Attrs().Index != pooled || !isUp(vm) || vm.Attrs().MasterIndex != link(t, "bgtest0").Attrs().Index {
		t.Fatalf("bgtvm1: index %d (pooled %d) up %v", vm.Attrs().Index, pooled, isUp(vm))
	}
	t.Logf("CreateTAP from the pool took %s", took)
	waitPool(n)
	if !n.TAPExists("bgp0") || !n.TAPExists("bgp1") {
		t.Fatal("pool not refilled")
	}

	// The pool is full, so the released TAP is deleted...
	must(t, n.DeleteTAP(ctx, "bgtvm1"))
	if n.TAPExists("bgtvm1") {
		t.Fatal("bgtvm1 still there")
	}
	// ...while with a free slot it goes back to the pool.
	must(t, n.CreateTAP(ctx, "bgtvm2"))
	idx := link(t, "bgtvm2").Attrs().Index
	waitPool(n)
	must(t, netlink.LinkDel(link(t, "bgp1"))) // free a slot (refreshPool does not refill)
	n.refreshPool()
	must(t, n.DeleteTAP(ctx, "bgtvm2"))
	if n.TAPExists("bgtvm2") {
		t.Fatal("bgtvm2 still there")
	}
	if l, err := netlink.LinkByName("bgp1"); err != nil || l.Attrs().Index != idx || isUp(l) {
		t.Fatalf("bgtvm2 (index %d) did not return to the pool: %v", idx, linkNames(t))
	}

	// A TAP a process still holds is deleted, never pooled.
	must(t, n.CreateTAP(ctx, "bgtvm3"))
	fd := attachTAP(t, "bgtvm3")
	defer fd.Close()
	must(t, n.DeleteTAP(ctx, "bgtvm3"))
	if n.TAPExists("bgtvm3") {
		t.Fatal("held TAP not deleted")
	}
	must(t, n.Teardown(ctx))
	assertNothingLeft(t)
}

// attachTAP opens an existing TAP as a VMM would.
func attachTAP(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var req [40]byte
	copy(req[:16], name)
	binary.NativeEndian.PutUint16(req[16:], 0x0002|0x1000)  // IFF_TAP|IFF_NO_PI
	if err := ioctl(f.Fd(), 0x400454ca, &req); err != nil { // TUNSETIFF
		f.Close()
		t.Fatalf("attach %s: %v", name, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for link(t, name).Attrs().RawFlags&0x10000 == 0 { // IFF_LOWER_UP
		if time.Now().After(deadline) {
			t.Fatal("carrier never came up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ioctl(fd uintptr, req uintptr, arg *[40]byte) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(arg))); e != 0 {
		return e
	}
	return nil
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// On a host where forwarding is already on (Docker, libvirt), banger
// neither records nor reverts it: teardown leaves it on.
func TestEnsureLeavesForwardingItFoundOn(t *testing.T) {
	enterNetns(t)
	ctx := context.Background()
	setForward(t, "1")
	n := newTestNet(t, "10.77.0.0/24")
	must(t, n.EnsureBridge(ctx))
	waitPool(n)
	if rs := nftRuleset(t); strings.Contains(rs, fwdMarker) || !strings.Contains(rs, "masquerade") {
		t.Fatalf("ruleset with forwarding already on:\n%s", rs)
	}
	st, err := n.Show(ctx)
	must(t, err)
	for _, o := range st.Objects {
		if o.Kind == "sysctl" {
			t.Errorf("Show claims %s %s, which banger did not set", o.Kind, o.Name)
		}
	}
	must(t, n.Teardown(ctx))
	if got := readForward(t); got != "1" {
		t.Errorf("teardown turned forwarding it found on to %s", got)
	}
	if got := linkNames(t); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("links left: %v", got)
	}
	if rs := strings.TrimSpace(nftRuleset(t)); rs != "" {
		t.Errorf("nft ruleset left:\n%s", rs)
	}
}
