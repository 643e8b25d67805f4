package api

import (
	"net/netip"
	"testing"
)

func TestParseNetRule(t *testing.T) {
	for _, c := range []struct {
		in   string
		want NetRule
	}{
		{"10.1.2.0/24", NetRule{Prefix: netip.MustParsePrefix("10.1.2.0/24")}},
		{"10.1.2.7/24", NetRule{Prefix: netip.MustParsePrefix("10.1.2.0/24")}},
		{"203.0.113.7", NetRule{Prefix: netip.MustParsePrefix("203.0.113.7/32")}},
		{"10.1.2.0/24:5432", NetRule{Prefix: netip.MustParsePrefix("10.1.2.0/24"), Port: 5432}},
		{"PyPI.org", NetRule{Domain: "pypi.org"}},
		{"db.example.com:5432", NetRule{Domain: "db.example.com", Port: 5432}},
		{"*.example.com", NetRule{Domain: "*.example.com"}},
	} {
		got, err := ParseNetRule(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseNetRule(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "10.1.2.0/24:0", "10.1.2.0/24:70000", "::1", "2001:db8::/32", "not a host", "localhost", "a.b:port", "*.com.:x"} {
		if _, err := ParseNetRule(bad); err == nil {
			t.Errorf("ParseNetRule(%q) accepted", bad)
		}
	}
}

func TestNetPolicyValidate(t *testing.T) {
	if err := (NetPolicy{Mode: "open"}).Validate(); err == nil {
		t.Error("mode open accepted")
	}
	if err := (NetPolicy{Mode: NetNAT, Group: "a b"}).Validate(); err == nil {
		t.Error("group with a space accepted")
	}
	if err := (NetPolicy{Mode: NetIsolated, AllowOut: []string{"pypi.org:443"}, DenyOut: []string{"0.0.0.0/0"}}).Validate(); err != nil {
		t.Error(err)
	}
}
