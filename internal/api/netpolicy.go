package api

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// MethodVMSetNet changes a VM's network policy (vm set --net/--allow-out/
// --deny-out); on a running VM it applies to new connections at once.
const MethodVMSetNet = "vm.set_net"

// Network modes.
const (
	NetNAT      = "nat"      // the public internet through NAT (default)
	NetIsolated = "isolated" // nothing leaves (banger's DNS for .vm names only)
)

// NetPolicy is who a VM may talk to, enforced on the host (banger's
// nftables tables; nothing the guest can change). Allow comes first, then
// Deny, then Mode: nat reaches the rest of the public internet (never
// private ranges or the host's LAN unless allowed), isolated nothing.
// A rule is a CIDR or address, CIDR:port, host:port, or a domain name.
//
// E2B's `network` (POST /sandboxes, PUT /sandboxes/{id}/network) maps
// onto it one to one: allowInternetAccess=false → Mode "isolated" (true or
// absent → "nat"); allowOut → AllowOut; denyOut → DenyOut (E2B, too, lets
// allowOut win over denyOut). Call vms.Service.SetNetPolicy.
type NetPolicy struct {
	Mode     string   `json:"mode"`
	AllowOut []string `json:"allow_out,omitempty"`
	DenyOut  []string `json:"deny_out,omitempty"`
	// Group: guests reach each other only within the same group.
	Group string `json:"group,omitempty"`
}

// SetNetParams changes a VM's policy; a nil field is left as it is.
type SetNetParams struct {
	Name     string    `json:"name"`
	Mode     *string   `json:"mode,omitempty"`
	AllowOut *[]string `json:"allow_out,omitempty"`
	DenyOut  *[]string `json:"deny_out,omitempty"`
}

// NetRule is one parsed allow/deny rule: a prefix or a domain, with a
// port (0: every port).
type NetRule struct {
	Prefix netip.Prefix
	Domain string
	Port   uint16
}

var domainRe = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+\.?$`)

// ParseNetRule parses "10.1.2.0/24", "203.0.113.7", "10.1.2.0/24:5432",
// "db.example.com:5432", "pypi.org" or "*.example.com" (every name below
// example.com).
func ParseNetRule(s string) (NetRule, error) {
	var r NetRule
	host := strings.TrimSpace(s)
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		p, err := strconv.ParseUint(host[i+1:], 10, 16)
		if err != nil || p == 0 {
			return r, fmt.Errorf("rule %q: port %q is not a number from 1 to 65535", s, host[i+1:])
		}
		r.Port, host = uint16(p), host[:i]
	}
	if p, err := netip.ParsePrefix(host); err == nil {
		if !p.Addr().Is4() {
			return r, fmt.Errorf("rule %q: only IPv4 is supported (guests have no IPv6)", s)
		}
		r.Prefix = p.Masked()
		return r, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return r, fmt.Errorf("rule %q: only IPv4 is supported (guests have no IPv6)", s)
		}
		r.Prefix = netip.PrefixFrom(a, 32)
		return r, nil
	}
	if !domainRe.MatchString(strings.TrimPrefix(host, "*.")) {
		return r, fmt.Errorf("rule %q: want a CIDR (10.1.2.0/24), an address, either with :PORT, or a domain name (pypi.org, db.example.com:5432)", s)
	}
	r.Domain = strings.ToLower(strings.TrimSuffix(host, "."))
	return r, nil
}

// Validate checks the mode and every rule.
func (p NetPolicy) Validate() error {
	if p.Mode != NetNAT && p.Mode != NetIsolated {
		return fmt.Errorf("network mode %q: want %q or %q", p.Mode, NetNAT, NetIsolated)
	}
	for _, s := range append(append([]string(nil), p.AllowOut...), p.DenyOut...) {
		if _, err := ParseNetRule(s); err != nil {
			return err
		}
	}
	if p.Group != "" && !regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`).MatchString(p.Group) {
		return fmt.Errorf("group %q: use letters, digits, '.', '_' and '-' (at most 64)", p.Group)
	}
	return nil
}

// Port forwarding (vm forward, -p): a host address:port → a guest port.
const (
	MethodVMForward       = "vm.forward"      // ForwardParams → []Forward
	MethodVMForwardList   = "vm.forward_ls"   // NameParams → []Forward
	MethodVMForwardRemove = "vm.forward_rm"   // ForwardRemoveParams → []Forward
	MethodVMAutoForward   = "vm.auto_forward" // AutoForwardParams → []Forward
)

// ForwardSpec is one forward as asked for: `[ADDR:]HOSTPORT:GUESTPORT[/udp]`.
type ForwardSpec struct {
	Addr      string `json:"addr"` // host address to bind; "127.0.0.1" unless given
	HostPort  int    `json:"host_port"`
	GuestPort int    `json:"guest_port"`
	Proto     string `json:"proto"` // tcp or udp
}

func (f ForwardSpec) String() string {
	return fmt.Sprintf("%s:%d:%d/%s", f.Addr, f.HostPort, f.GuestPort, f.Proto)
}

// Forward is a VM's forward as vm forward ls shows it.
type Forward struct {
	ForwardSpec
	// Auto: made by auto-forward for a port the guest listens on.
	Auto bool `json:"auto,omitempty"`
	// Active: the host port is bound now (the VM runs).
	Active bool `json:"active"`
}

// ForwardParams adds forwards to a VM (kept with it).
type ForwardParams struct {
	Name     string   `json:"name"`
	Forwards []string `json:"forwards"`
}

// ForwardRemoveParams removes a VM's forward of a host port.
type ForwardRemoveParams struct {
	Name     string `json:"name"`
	HostPort int    `json:"host_port"`
	Proto    string `json:"proto,omitempty"` // "": either
}

// AutoForwardParams turns a VM's auto-forward on or off.
type AutoForwardParams struct {
	Name string `json:"name"`
	On   bool   `json:"on"`
}

// ParseForward parses `[ADDR:]HOSTPORT:GUESTPORT[/udp|/tcp]`.
func ParseForward(s string) (ForwardSpec, error) {
	f := ForwardSpec{Addr: "127.0.0.1", Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		f.Proto, rest = strings.ToLower(rest[i+1:]), rest[:i]
		if f.Proto != "tcp" && f.Proto != "udp" {
			return f, fmt.Errorf("forward %q: protocol %q: want tcp or udp", s, f.Proto)
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return f, fmt.Errorf("forward %q: want [ADDR:]HOSTPORT:GUESTPORT[/udp], e.g. 8080:80", s)
	}
	gp, err := strconv.Atoi(rest[i+1:])
	if err != nil || gp < 1 || gp > 65535 {
		return f, fmt.Errorf("forward %q: guest port %q is not a number from 1 to 65535", s, rest[i+1:])
	}
	f.GuestPort, rest = gp, rest[:i]
	hostPort := rest
	if j := strings.LastIndexByte(rest, ':'); j >= 0 {
		addr := strings.TrimSuffix(strings.TrimPrefix(rest[:j], "["), "]")
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return f, fmt.Errorf("forward %q: host address %q is not an IP address", s, addr)
		}
		f.Addr, hostPort = a.String(), rest[j+1:]
	}
	hp, err := strconv.Atoi(hostPort)
	if err != nil || hp < 1 || hp > 65535 {
		return f, fmt.Errorf("forward %q: host port %q is not a number from 1 to 65535", s, hostPort)
	}
	f.HostPort = hp
	return f, nil
}

// CreatePorts are a new VM's forwards (-p): `[ADDR:]HOSTPORT:GUESTPORT[/udp]`
// each, kept with the VM; AutoForward overrides [network] auto_forward.
type CreatePorts struct {
	Forwards    []string `json:"forwards,omitempty"`
	AutoForward *bool    `json:"auto_forward,omitempty"`
}
