package network

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/miekg/dns"
)

func TestDomainMatches(t *testing.T) {
	for _, c := range []struct {
		rule, name string
		want       bool
	}{
		{"pypi.org", "pypi.org", true},
		{"pypi.org", "files.pypi.org", false},
		{"pypi.org", "evilpypi.org", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "badexample.com", false},
	} {
		if got := DomainMatches(c.rule, c.name); got != c.want {
			t.Errorf("DomainMatches(%q, %q) = %v, want %v", c.rule, c.name, got, c.want)
		}
	}
}

// A guest's allowed domain: the answer's A records join its set, for
// each port of a matching rule; other guests and other names add nothing.
func TestAllowAnswerFillsTheGuestsSet(t *testing.T) {
	guest := netip.MustParseAddr("10.99.0.2")
	rules := []api.NetRule{{Domain: "pypi.org"}, {Domain: "pypi.org", Port: 443}, {Domain: "other.org"}}
	n := hostnet.NewFake(netip.MustParsePrefix("10.99.0.0/24"))
	s := New(Deps{Bridge: "fake0", Net: n, VMs: &fakeVMs{}, Domains: func(c netip.Addr) (string, []api.NetRule, bool) {
		if c == guest {
			return "bgtabc", rules, false
		}
		return "", nil, false
	}})
	answer := func(name string, ips ...string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		for _, ip := range ips {
			rr, _ := dns.NewRR(dns.Fqdn(name) + " 30 IN A " + ip)
			m.Answer = append(m.Answer, rr)
		}
		return m
	}
	s.allowAnswer(netip.MustParseAddr("10.99.0.3"), answer("pypi.org", "203.0.113.1"))
	s.allowAnswer(guest, answer("unrelated.org", "203.0.113.2"))
	if len(n.Resolved) != 0 {
		t.Fatalf("addresses allowed for another guest or name: %v", n.Resolved)
	}
	s.allowAnswer(guest, answer("PyPI.org", "203.0.113.1", "203.0.113.9"))
	got := n.Resolved["bgtabc"]
	want := []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.9")}
	// Two matching rules (any port, and 443): added once for each.
	if len(got) != 4 || !slices.Equal(got[:2], want) || !slices.Equal(got[2:], want) {
		t.Fatalf("resolved = %v, want %v twice", got, want)
	}
}

// An isolated guest has only its allowed domains resolved (DNS would
// otherwise carry data out of it); other guests, and a guest that is not
// isolated, have every name resolved.
func TestIsolatedGuestsNamesAreRefused(t *testing.T) {
	isolated, nat := netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.3")
	n := hostnet.NewFake(netip.MustParsePrefix("10.99.0.0/24"))
	s := New(Deps{Bridge: "fake0", Net: n, VMs: &fakeVMs{}, Domains: func(c netip.Addr) (string, []api.NetRule, bool) {
		switch c {
		case isolated:
			return "bgtiso", []api.NetRule{{Domain: "pypi.org"}, {Domain: "*.pythonhosted.org"}}, true
		case nat:
			return "bgtnat", nil, false
		}
		return "", nil, false
	}})
	for _, c := range []struct {
		client netip.Addr
		name   string
		refuse bool
	}{
		{isolated, "pypi.org.", false},
		{isolated, "FILES.pythonhosted.org.", false},
		{isolated, "exfil-data.attacker.example.", true},
		{isolated, "pythonhosted.org.", true},
		{nat, "anything.example.", false},
		{netip.MustParseAddr("10.99.0.9"), "anything.example.", false},
	} {
		if got := s.refuseName(c.client, c.name); got != c.refuse {
			t.Errorf("refuseName(%v, %q) = %v, want %v", c.client, c.name, got, c.refuse)
		}
	}
}
