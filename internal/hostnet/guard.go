package hostnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The nftables table "bridge banger" guards the bridge's ports (layer 2):
//
//	prerouting: a guest's TAP sends only IPv4 and ARP with the guest's
//	            own MAC and address (chain guard, one rule pair per
//	            guest); everything else from a banger TAP is dropped —
//	            a changed source MAC or address, IPv6 (so a guest never
//	            reaches the host's link-local services or sends router
//	            advertisements), frames from a TAP no guest owns yet.
//	forward:    a guest reaches no other guest's TAP unless both are in
//	            the same group (chain groups, one rule per direction,
//	            which also sets groupMark on the packet).
//
// Where br_netfilter is loaded (Docker loads it), bridged IPv4 also passes
// the ip family's forward hook with the bridge as both interfaces, just
// like a guest routed back to another through the host; the ip table
// lets through only bridged packets the groups chain marked. The bridge
// forward chain runs before br_netfilter's hook (priority -200) for that.
//
// Frames from the host to a guest take the output hook, untouched.
var bridgeTable = &nftables.Table{Family: nftables.TableFamilyBridge, Name: TableName}

const (
	guardChain  = "guard"
	groupsChain = "groups"
	// tapsGlob matches every banger TAP (bgt<id>, bgp<n>).
	tapsGlob = "bg*"
)

func wantBridgeTable() []wantChain {
	filter := func(name string, hook *nftables.ChainHook) nftables.Chain {
		return nftables.Chain{Name: name, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: nftables.ChainPriorityRef(-200)}
	}
	jump := func(c string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: c} }
	return []wantChain{ // jump targets first
		{chain: nftables.Chain{Name: guardChain}, dynamic: true},
		{chain: nftables.Chain{Name: groupsChain}, dynamic: true},
		{chain: filter("prerouting", nftables.ChainHookPrerouting), rules: []wantRule{
			{"banger: a guest's frames pass only with its own MAC and IPv4 address (chain guard)", join(iif(tapsGlob), []expr.Any{jump(guardChain)})},
			{"banger: nothing else from a guest: no spoofed MAC or address, no IPv6, no router advertisements", join(iif(tapsGlob), []expr.Any{drop})},
		}},
		{chain: filter("forward", nftables.ChainHookForward), rules: []wantRule{
			{"banger: guests of the same group reach each other (chain groups)", join(iif(tapsGlob), oif(tapsGlob), []expr.Any{jump(groupsChain)})},
			{"banger: guests reach no other guest (vm create --group NAME lets a group's guests)", join(iif(tapsGlob), oif(tapsGlob), []expr.Any{drop})},
		}},
	}
}

func ensureBridgeTable() (created, rebuilt bool, err error) {
	return ensureTableOf(bridgeTable, wantBridgeTable())
}

// guardRules are a guest's layer-2 rules: IPv4 and ARP from its TAP with
// its own MAC and address.
func guardRules(g Guest) ([]wantRule, error) {
	mac, err := net.ParseMAC(g.MAC)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("guest %s: bad MAC %q", g.TAP, g.MAC)
	}
	if !g.IP.Is4() {
		return nil, fmt.Errorf("guest %s: bad IPv4 address %s", g.TAP, g.IP)
	}
	ip := g.IP.AsSlice()
	from := join(iif(g.TAP), []expr.Any{payload(expr.PayloadBaseLLHeader, 6, 6), cmpEq(mac)})
	return []wantRule{
		{guestTag(g.TAP) + "IPv4 from " + g.MAC + " " + g.IP.String(), join(from, etherType(unix.ETH_P_IP),
			[]expr.Any{payload(expr.PayloadBaseNetworkHeader, 12, 4), cmpEq(ip), accept})},
		// ARP for Ethernet/IPv4: sender MAC at 8, sender address at 14.
		{guestTag(g.TAP) + "ARP from " + g.MAC + " " + g.IP.String(), join(from, etherType(unix.ETH_P_ARP),
			[]expr.Any{payload(expr.PayloadBaseNetworkHeader, 8, 6), cmpEq(mac),
				payload(expr.PayloadBaseNetworkHeader, 14, 4), cmpEq(ip), accept})},
	}, nil
}

// groupRules let a guest and each peer (TAPs of the same group) reach
// each other.
func groupRules(g Guest) []wantRule {
	var out []wantRule
	for _, p := range g.Peers {
		for _, d := range [][2]string{{g.TAP, p}, {p, g.TAP}} {
			out = append(out, wantRule{fmt.Sprintf("banger: group peers %s -> %s ", d[0], d[1]),
				join(iif(d[0]), oif(d[1]), setMark(groupMark), []expr.Any{accept})})
		}
	}
	return out
}

// groupMark is the packet mark bit of bridged traffic between a group's
// guests (see above); other bits of the mark are left alone.
const groupMark = 0x00b40000

// setMark is `meta mark set meta mark | bit`.
func setMark(bit uint32) []expr.Any {
	return []expr.Any{meta(expr.MetaKeyMARK),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ^bit), Xor: binary.NativeEndian.AppendUint32(nil, bit)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}}
}

// hasMark is `meta mark & bit == bit`.
func hasMark(bit uint32) []expr.Any {
	b := binary.NativeEndian.AppendUint32(nil, bit)
	return []expr.Any{meta(expr.MetaKeyMARK),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: b, Xor: make([]byte, 4)}, cmpEq(b)}
}

// guestTag starts the comment of every rule that belongs to a guest, so
// that its rules can be found and replaced.
func guestTag(tap string) string { return "banger: guest " + tap + " " }

// mentions reports whether a rule's comment belongs to tap (its own rules
// and group rules naming it).
func mentions(r *nftables.Rule, tap string) bool {
	c := comment(r)
	return strings.HasPrefix(c, guestTag(tap)) || strings.Contains(c, " "+tap+" ")
}

// delGuestRules queues the deletion of tap's rules in the dynamic chains
// of t.
func delGuestRules(c *nftables.Conn, t *nftables.Table, tap string, chains ...string) error {
	rules, _, err := tableChainsOf(c, t)
	if err != nil {
		return err
	}
	for _, ch := range chains {
		for _, r := range rules[ch] {
			if mentions(r, tap) {
				if err := c.DelRule(r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func addRules(c *nftables.Conn, t *nftables.Table, chain string, rules []wantRule) {
	ch := &nftables.Chain{Name: chain, Table: t}
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment)})
	}
}

// bridgeSysctls keeps IPv6 off banger's bridge: no link-local address a
// guest could reach the host's [::] services on, and no router
// advertisement accepted from a guest. Both are the bridge's own settings.
func bridgeSysctls(bridge string) error {
	var errs []error
	for _, kv := range [][2]string{{"accept_ra", "0"}, {"disable_ipv6", "1"}} {
		p := "/proc/sys/net/ipv6/conf/" + bridge + "/" + kv[0]
		if err := os.WriteFile(p, []byte(kv[1]+"\n"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("set %s=%s on %s: %w", kv[0], kv[1], bridge, err))
		}
	}
	return errors.Join(errs...)
}

var _ = netip.Addr{}
