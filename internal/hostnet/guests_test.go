package hostnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// A guest applied before the tables exist (a daemon restarted after an
// upgrade re-attaches its VMs before it ensures the network) gets its
// rules once EnsureBridge makes them, and DeleteTAP's removal sticks.
func TestGuestAppliedBeforeTheTablesComesBack(t *testing.T) {
	enterNetns(t)
	ctx := context.Background()
	n := newTestNetConfig(t, Config{Bridge: "bgtest0", Subnet: netip.MustParsePrefix("10.77.0.0/24"), PoolSize: -1})
	g := Guest{TAP: "bgtabc", MAC: "02:00:00:00:00:0a", IP: netip.MustParseAddr("10.77.0.10"),
		Egress: Egress{Isolated: true, Allow: []Dest{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Port: 5432}}}}
	if err := n.ApplyGuest(ctx, g); err == nil {
		t.Fatal("ApplyGuest without tables succeeded")
	}
	must(t, n.EnsureBridge(ctx))
	defer n.Teardown(ctx)
	rs := nftRuleset(t)
	for _, want := range []string{`iifname "bgtabc" ether saddr 02:00:00:00:00:0a ip saddr 10.77.0.10 accept`,
		"ip saddr 10.77.0.10 goto vm-bgtabc", "ip daddr 10.1.0.0/16 tcp dport 5432 accept", `isolated: nothing else`} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	n.removeGuest(ctx, g.TAP)
	if rs := nftRuleset(t); strings.Contains(rs, "bgtabc") {
		t.Fatalf("rules left after removal:\n%s", rs)
	}
	if bad := (Guest{TAP: "eth0", MAC: g.MAC, IP: g.IP}); n.ApplyGuest(ctx, bad) == nil {
		t.Error("a guest on a TAP that is not banger's was accepted")
	}
}
