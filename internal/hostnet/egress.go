package hostnet

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Guest is one running VM's place on the bridge and its egress policy:
// the request of ApplyGuest, so it must stay plain data.
type Guest struct {
	TAP string     `json:"tap"`
	MAC string     `json:"mac"`
	IP  netip.Addr `json:"ip"`
	// Peers are the TAPs of the running guests of the same group.
	Peers  []string `json:"peers,omitempty"`
	Egress Egress   `json:"egress"`
}

// Egress is what a guest may reach beyond the host, in order: Allow,
// then addresses its allowed domains resolved to, then Deny, then the
// mode — Isolated drops the rest, otherwise (NAT) the rest of the public
// internet is reached and private ranges are not.
type Egress struct {
	Isolated bool   `json:"isolated,omitempty"`
	Allow    []Dest `json:"allow,omitempty"`
	Deny     []Dest `json:"deny,omitempty"`
	// DomainPorts are the ports (0: any) of the allowed domain rules;
	// each has a set that AllowResolved fills. While there is one, DNS
	// to anywhere but banger's is refused.
	DomainPorts []uint16 `json:"domain_ports,omitempty"`
}

// Dest is a destination: a prefix and a port (0: every port).
type Dest struct {
	Prefix netip.Prefix `json:"prefix"`
	Port   uint16       `json:"port,omitempty"`
}

// PrivateRanges are what `nat` does not reach unless allowed: the host's
// LAN and every other private, shared or reserved range.
var PrivateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/3"),
}

const (
	guestsChain   = "guests"
	vmChainPrefix = "vm-"
)

func vmChain(tap string) string { return vmChainPrefix + tap }

// domainSet names the set of addresses tap's domains on port resolved to.
func domainSet(tap string, port uint16) string { return fmt.Sprintf("d-%s-%d", tap, port) }

func (g Guest) validate() error {
	if err := checkTAPName(g.TAP); err != nil {
		return err
	}
	for _, p := range g.Peers {
		if err := checkTAPName(p); err != nil {
			return err
		}
	}
	for _, d := range append(append([]Dest(nil), g.Egress.Allow...), g.Egress.Deny...) {
		if !d.Prefix.IsValid() || !d.Prefix.Addr().Is4() {
			return fmt.Errorf("guest %s: %s is not an IPv4 prefix", g.TAP, d.Prefix)
		}
	}
	return nil
}

// egressRules is the body of a guest's chain vm-TAP.
func egressRules(tap string, e Egress) []wantRule {
	tag := guestTag(tap)
	var out []wantRule
	dest := func(verb string, d Dest, v expr.Any) {
		if d.Port == 0 {
			out = append(out, wantRule{fmt.Sprintf("%s%s %s", tag, verb, d.Prefix), join(ipIn(false, d.Prefix), []expr.Any{v})})
			return
		}
		for _, p := range protos {
			out = append(out, wantRule{fmt.Sprintf("%s%s %s port %d/%s", tag, verb, d.Prefix, d.Port, p.name),
				join(ipIn(false, d.Prefix), dport(p.num, d.Port), []expr.Any{v})})
		}
	}
	for _, d := range e.Allow {
		dest("allow", d, accept)
	}
	for _, port := range e.DomainPorts {
		lookup := []expr.Any{payload(expr.PayloadBaseNetworkHeader, 16, 4), &expr.Lookup{SourceRegister: 1, SetName: domainSet(tap, port)}}
		if port == 0 {
			out = append(out, wantRule{tag + "allow what its allowed domains resolved to", join(lookup, []expr.Any{accept})})
			continue
		}
		for _, p := range protos {
			out = append(out, wantRule{fmt.Sprintf("%sallow what its allowed domains resolved to, port %d/%s", tag, port, p.name),
				join(lookup, dport(p.num, port), []expr.Any{accept})})
		}
	}
	if len(e.DomainPorts) > 0 {
		for _, p := range protos {
			out = append(out, wantRule{tag + "DNS only through banger's (a domain rule is enforced by its answers), " + p.name,
				join(dport(p.num, 53), []expr.Any{drop})})
		}
	}
	for _, d := range e.Deny {
		dest("deny", d, drop)
	}
	if e.Isolated {
		return append(out, wantRule{tag + "isolated: nothing else", []expr.Any{drop}})
	}
	for _, p := range PrivateRanges {
		out = append(out, wantRule{tag + "nat: no private range " + p.String(), join(ipIn(false, p), []expr.Any{drop})})
	}
	return append(out, wantRule{tag + "nat: the public internet", []expr.Any{accept}})
}

// applyGuest replaces a guest's rules in both tables in one transaction:
// new connections see the whole new policy at once, never half of it.
func applyGuest(g Guest) error {
	if err := g.validate(); err != nil {
		return err
	}
	guard, err := guardRules(g)
	if err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return err
	}
	if err := delGuestRules(c, bridgeTable, g.TAP, guardChain, groupsChain); err != nil {
		return fmt.Errorf("nftables (is the bridge set up?): %w", err)
	}
	if err := delGuestRules(c, table, g.TAP, guestsChain); err != nil {
		return err
	}
	addRules(c, bridgeTable, guardChain, guard)
	addRules(c, bridgeTable, groupsChain, groupRules(g))
	ch := c.AddChain(&nftables.Chain{Name: vmChain(g.TAP), Table: table})
	c.FlushChain(ch)
	for _, port := range g.Egress.DomainPorts {
		s := &nftables.Set{Table: table, Name: domainSet(g.TAP, port), KeyType: nftables.TypeIPAddr, HasTimeout: true}
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
	}
	addRules(c, table, vmChain(g.TAP), egressRules(g.TAP, g.Egress))
	addRules(c, table, guestsChain, []wantRule{{guestTag(g.TAP) + "from " + g.IP.String(),
		join(ipIn(true, netip.PrefixFrom(g.IP, 32)), []expr.Any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: vmChain(g.TAP)}})}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("apply guest %s rules: %w", g.TAP, err)
	}
	return dropStaleSets(g)
}

// dropStaleSets removes domain sets a changed policy no longer uses.
func dropStaleSets(g Guest) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	sets, err := c.GetSets(table)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, p := range g.Egress.DomainPorts {
		keep[domainSet(g.TAP, p)] = true
	}
	n := 0
	for _, s := range sets {
		if isGuestSet(s.Name, g.TAP) && !keep[s.Name] {
			c.DelSet(s)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return c.Flush()
}

func isGuestSet(name, tap string) bool {
	p := "d-" + tap + "-"
	return len(name) > len(p) && name[:len(p)] == p
}

// removeGuest deletes a guest's rules, chain and sets; a guest with none
// is not an error.
func removeGuest(tap string) error {
	if err := checkTAPName(tap); err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return err
	}
	var errs []error
	if ok, _ := findTableOf(c, bridgeTable); ok {
		errs = append(errs, delGuestRules(c, bridgeTable, tap, guardChain, groupsChain))
	}
	if ok, _ := findTableOf(c, table); ok {
		errs = append(errs, delGuestRules(c, table, tap, guestsChain))
		_, chains, err := tableChainsOf(c, table)
		errs = append(errs, err)
		if ch, ok := chains[vmChain(tap)]; ok {
			c.FlushChain(ch)
			c.DelChain(ch)
		}
		sets, err := c.GetSets(table)
		errs = append(errs, err)
		for _, s := range sets {
			if isGuestSet(s.Name, tap) {
				c.DelSet(s)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.Flush()
}

// allowResolved adds addresses a guest's allowed domain resolved to, for
// ttl, to its set for port.
func allowResolved(tap string, port uint16, addrs []netip.Addr, ttl time.Duration) error {
	if err := checkTAPName(tap); err != nil {
		return err
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	var els []nftables.SetElement
	for _, a := range addrs {
		if a.Is4() {
			els = append(els, nftables.SetElement{Key: a.AsSlice(), Timeout: ttl})
		}
	}
	if len(els) == 0 {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return err
	}
	s, err := c.GetSetByName(table, domainSet(tap, port))
	if err != nil {
		return fmt.Errorf("guest %s has no domain rule for port %d: %w", tap, port, err)
	}
	// Adding a present element does not renew its timeout: make sure each
	// is present, then delete and re-add them in one transaction, so the
	// newest answer's TTL counts and no address is ever missing.
	if err := c.SetAddElements(s, els); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	if err := c.SetDeleteElements(s, els); err != nil {
		return err
	}
	if err := c.SetAddElements(s, els); err != nil {
		return err
	}
	return c.Flush()
}
