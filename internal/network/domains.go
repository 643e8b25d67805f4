package network

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// allowAnswer enforces a guest's domain rules by address: when banger's
// DNS answers the guest a name one of its rules allows, the answer's IPv4
// addresses join that guest's allowed set for the records' TTL (the
// smallest one), before the guest sees the answer.
func (s *Service) allowAnswer(client netip.Addr, resp *dns.Msg) {
	if len(resp.Question) != 1 {
		return
	}
	tap, rules, _ := s.d.Domains(client)
	if tap == "" || len(rules) == 0 {
		return
	}
	name := strings.ToLower(strings.TrimSuffix(resp.Question[0].Name, "."))
	var ports []uint16
	for _, r := range rules {
		if r.Domain != "" && DomainMatches(r.Domain, name) {
			ports = append(ports, r.Port)
		}
	}
	if len(ports) == 0 {
		return
	}
	var addrs []netip.Addr
	ttl := uint32(0)
	for _, rr := range resp.Answer {
		a, ok := rr.(*dns.A)
		if !ok {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
			addrs = append(addrs, ip)
			if ttl == 0 || a.Hdr.Ttl < ttl {
				ttl = a.Hdr.Ttl
			}
		}
	}
	if len(addrs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range ports {
		if err := s.d.Net.AllowResolved(ctx, tap, p, addrs, time.Duration(ttl)*time.Second); err != nil {
			s.d.Log.Warn("allow resolved addresses", "tap", tap, "name", name, "err", err)
		}
	}
}

// refuseName keeps an isolated guest's names to itself: banger's DNS
// resolves only the domains its allow rules name (and `.vm` names, which
// never reach here), so DNS cannot carry data out of it either.
func (s *Service) refuseName(client netip.Addr, name string) bool {
	_, rules, isolated := s.d.Domains(client)
	if !isolated {
		return false
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, r := range rules {
		if r.Domain != "" && DomainMatches(r.Domain, name) {
			return false
		}
	}
	return true
}

// DomainMatches says whether a rule's domain ("pypi.org", or
// "*.example.com" for every name below example.com) covers name.
func DomainMatches(rule, name string) bool {
	if rest, ok := strings.CutPrefix(rule, "*."); ok {
		return strings.HasSuffix(name, "."+rest)
	}
	return name == rule
}
