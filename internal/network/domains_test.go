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
	s := New(Deps{Bridge: "fake0", Net: n, VMs: &fakeVMs{}, Domains: func(c netip.Addr) (string, []api.NetRule) {
		if c == guest {
			return "bgtabc", rules
		}
		return "", nil
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
