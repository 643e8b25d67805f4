package hostnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The nftables table "banger" (family ip) holds all of banger's rules:
//
//	postrouting (nat): masquerade guest traffic that leaves the subnet
//	prerouting  (nat): guests' DNS to gateway:53 → gateway:DNS port
//	output      (nat): the host's own DNS to gateway:53 → gateway:DNS port
//	input    (filter): from the bridge, only replies, banger's DNS and
//	                   pings reach the host (absent with guests_reach_host)
//	forward  (filter): guests reach no link-local address, such as a cloud
//	                   metadata service (absent with guests_reach_host)
//
// Guests use port 53 of the gateway as their resolver; the dnat lets
// the daemon serve it on an unprivileged port without binding 53 (which
// needs privilege and may be taken by a host resolver on 0.0.0.0).
// Every rule carries a comment that says what it does; the comments are
// also how an existing table is compared with the wanted one.
//
// fwdMarker is an empty chain that exists only while banger has turned
// IPv4 forwarding on, so teardown restores it only then. Keeping the fact
// in the namespace itself (not in a file) keeps it right across daemon
// restarts, sudo and network namespaces.
const fwdMarker = "ip-forward-enabled-by-banger"

type wantChain struct {
	chain nftables.Chain
	rules []wantRule
	// dynamic chains hold per-guest rules (egress.go): their rules are
	// not compared, and a rebuild of the table empties them.
	dynamic bool
}

type wantRule struct {
	comment string
	exprs   []expr.Any
}

func wantTable(cfg Config) []wantChain {
	gw := GatewayOf(cfg.Subnet)
	nat := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) nftables.Chain {
		return nftables.Chain{Name: name, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio}
	}
	var pre, out []wantRule
	for _, proto := range []struct {
		name string
		num  byte
	}{{"udp", unix.IPPROTO_UDP}, {"tcp", unix.IPPROTO_TCP}} {
		redirect := []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: gw.AsSlice()},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto.num}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(53)},
			// dnat, not redirect: in the output hook a redirect would
			// send the host's queries to 127.0.0.1, where nothing listens.
			&expr.Immediate{Register: 1, Data: gw.AsSlice()},
			&expr.Immediate{Register: 2, Data: be16(cfg.DNSPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		}
		fromGuests := append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(cfg.Bridge)},
		}, redirect...)
		pre = append(pre, wantRule{fmt.Sprintf("banger: guest DNS %s:53/%s to banger's DNS on port %d", gw, proto.name, cfg.DNSPort), fromGuests})
		out = append(out, wantRule{fmt.Sprintf("banger: host DNS %s:53/%s to banger's DNS on port %d", gw, proto.name, cfg.DNSPort), redirect})
	}
	masq := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: maskOf(cfg.Subnet), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: cfg.Subnet.Addr().AsSlice()},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: maskOf(cfg.Subnet), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: cfg.Subnet.Addr().AsSlice()},
		&expr.Masq{},
	}
	chains := []wantChain{
		{chain: nat("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource),
			rules: []wantRule{{fmt.Sprintf("banger: masquerade guest traffic from %s leaving the subnet", cfg.Subnet), masq}}},
		{chain: nat("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest), rules: pre},
		{chain: nat("output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest), rules: out},
	}
	if !cfg.GuestsReachHost {
		chains = append(chains,
			wantChain{chain: nftables.Chain{Name: "input", Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter}, rules: guestInput(cfg)})
	}
	// A jump's target chain must exist first.
	return append(chains,
		wantChain{chain: nftables.Chain{Name: guestsChain}, dynamic: true},
		wantChain{chain: nftables.Chain{Name: "forward", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}, rules: guestForward(cfg)})
}

// guestForward is what guests reach beyond the host: never a link-local
// address (a cloud VM's metadata service, 169.254.169.254, hands out the
// host's credentials to whoever asks; absent with guests_reach_host),
// never another guest through the host, and otherwise what their own
// policy chain says (egress.go). Established connections continue, so a
// policy change applies to new connections.
func guestForward(cfg Config) []wantRule {
	br := iif(cfg.Bridge)
	var rules []wantRule
	if !cfg.GuestsReachHost {
		rules = append(rules, wantRule{"banger: guests reach no link-local address (cloud metadata services)",
			join(br, ipIn(false, netip.MustParsePrefix("169.254.0.0/16")), []expr.Any{drop})})
	}
	established := binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	return append(rules,
		wantRule{"banger: guests' established connections continue (a policy change applies to new ones)", join(br, []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: established, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)}, accept})},
		wantRule{"banger: guests of one group, bridged (br_netfilter shows bridged packets here; bridge table groups marks them)",
			join(br, oif(cfg.Bridge), hasMark(groupMark), []expr.Any{accept})},
		wantRule{"banger: guests reach no other guest through the host", join(br, oif(cfg.Bridge), []expr.Any{drop})},
		wantRule{"banger: each guest's egress policy (chain " + guestsChain + ", one vm-TAP chain per guest)",
			join(br, []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: guestsChain}})},
		wantRule{"banger: nothing from an address no running guest has", join(br, []expr.Any{drop})})
}

// guestInput keeps guests away from the host's own services: from the
// bridge, the host accepts replies to its own connections (ssh, probes),
// banger's DNS (guests' port 53 arrives here already redirected to the
// DNS port) and pings, and drops the rest. A drop in this chain is final
// whatever other tables accept; an accept here only lets other tables
// decide.
func guestInput(cfg Config) []wantRule {
	fromBridge := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(cfg.Bridge)},
	}
	rule := func(exprs ...expr.Any) []expr.Any { return append(slices.Clone(fromBridge), exprs...) }
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	established := binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	rules := []wantRule{{"banger: guests' replies to the host's connections", rule(
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: established, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		accept)}}
	for _, p := range []struct {
		name string
		num  byte
	}{{"udp", unix.IPPROTO_UDP}, {"tcp", unix.IPPROTO_TCP}} {
		rules = append(rules, wantRule{fmt.Sprintf("banger: guests may query banger's DNS (%s/%d)", p.name, cfg.DNSPort), rule(
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p.num}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(cfg.DNSPort)},
			accept)})
	}
	rules = append(rules,
		wantRule{"banger: guests may ping the host", rule(
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{8}}, // echo request
			accept)},
		wantRule{"banger: guests reach nothing else on the host ([network] guests_reach_host = true allows it)", rule(
			&expr.Verdict{Kind: expr.VerdictDrop})})
	return rules
}

var table = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}

func findTable(c *nftables.Conn) (bool, error) { return findTableOf(c, table) }

func findTableOf(c *nftables.Conn, t *nftables.Table) (bool, error) {
	ts, err := c.ListTablesOfFamily(t.Family)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(ts, func(x *nftables.Table) bool { return x.Name == t.Name }), nil
}

func tableChains(c *nftables.Conn) (map[string][]*nftables.Rule, map[string]*nftables.Chain, error) {
	return tableChainsOf(c, table)
}

// tableChainsOf returns a table's chains by name, each with its rules in
// order.
func tableChainsOf(c *nftables.Conn, t *nftables.Table) (map[string][]*nftables.Rule, map[string]*nftables.Chain, error) {
	chains, err := c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return nil, nil, err
	}
	rules, byName := map[string][]*nftables.Rule{}, map[string]*nftables.Chain{}
	for _, ch := range chains {
		if ch.Table.Name != t.Name {
			continue
		}
		rs, err := c.GetRules(t, ch)
		if err != nil {
			return nil, nil, err
		}
		rules[ch.Name], byName[ch.Name] = rs, ch
	}
	return rules, byName, nil
}

func comment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// ensureTable creates the table, or rebuilds it atomically when its rules
// differ from the wanted ones (a changed bridge, subnet or port); a
// rebuild drops the guests' chains, which the caller then re-applies.
func ensureTable(cfg Config) (created, rebuilt bool, err error) {
	return ensureTableOf(table, wantTable(cfg))
}

func ensureTableOf(table *nftables.Table, want []wantChain) (created, rebuilt bool, err error) {
	c, err := nftables.New()
	if err != nil {
		return false, false, err
	}
	exists, err := findTableOf(c, table)
	if err != nil {
		return false, false, err
	}
	marker := false
	if exists {
		have, _, err := tableChainsOf(c, table)
		if err != nil {
			return false, false, err
		}
		_, marker = have[fwdMarker]
		n := 0
		for name := range have {
			n += btoi(!strings.HasPrefix(name, vmChainPrefix))
		}
		same := n == len(want)+btoi(marker)
		for _, w := range want {
			if w.dynamic {
				_, ok := have[w.chain.Name]
				same = same && ok
				continue
			}
			var got []string
			for _, r := range have[w.chain.Name] {
				got = append(got, comment(r))
			}
			var exp []string
			for _, r := range w.rules {
				exp = append(exp, r.comment)
			}
			same = same && slices.Equal(got, exp)
		}
		if same {
			return false, false, nil
		}
		c.DelTable(table) // replaced in the same transaction
	}
	c.AddTable(table)
	for _, w := range want {
		ch := w.chain
		ch.Table = table
		c.AddChain(&ch)
		for _, r := range w.rules {
			c.AddRule(&nftables.Rule{Table: table, Chain: &ch, Exprs: r.exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment)})
		}
	}
	if marker {
		c.AddChain(&nftables.Chain{Name: fwdMarker, Table: table})
	}
	if err := c.Flush(); err != nil {
		return false, false, err
	}
	return !exists, exists, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func deleteTable() error { return deleteTableOf(table) }

func deleteTableOf(t *nftables.Table) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	if ok, err := findTableOf(c, t); err != nil || !ok {
		return err
	}
	c.DelTable(t)
	return c.Flush()
}

// ipForward is per network namespace: the file reflects the namespace of
// the thread that opens it.
const ipForward = "/proc/sys/net/ipv4/ip_forward"

// ensureForwarding turns IPv4 forwarding on when it is off, and records
// that banger did so in the table (fwdMarker). It must run after
// ensureTable.
func ensureForwarding() (changed bool, err error) {
	b, err := os.ReadFile(ipForward)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", ipForward, err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return false, nil
	}
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	c.AddChain(&nftables.Chain{Name: fwdMarker, Table: table})
	if err := c.Flush(); err != nil {
		return false, fmt.Errorf("record forwarding marker: %w", err)
	}
	if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
		c.DelChain(&nftables.Chain{Name: fwdMarker, Table: table})
		c.Flush()
		return false, fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return true, nil
}

// restoreForwarding turns forwarding off again only if banger turned it on.
func restoreForwarding() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	if ok, err := findTable(c); err != nil || !ok {
		return err
	}
	_, chains, err := tableChains(c)
	if err != nil {
		return err
	}
	ch, ok := chains[fwdMarker]
	if !ok {
		return nil
	}
	if err := os.WriteFile(ipForward, []byte("0\n"), 0o644); err != nil {
		return fmt.Errorf("restore IPv4 forwarding: %w", err)
	}
	c.DelChain(ch)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
