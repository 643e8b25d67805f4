// Package hostnet owns everything banger adds to the host's network: the
// bridge with its gateway address, a pool of ready TAP devices and one TAP
// per running VM, the nftables table "banger" (guest NAT and the redirect
// of guests' port 53 to banger's DNS server), IPv4 forwarding when banger
// had to turn it on, and systemd-resolved's routing of `.vm` names.
//
// Every object is tagged (links carry the alias "banger", rules a comment)
// so that it can be listed (Show) and removed (Teardown) without touching
// anything banger did not create. Every change converges: stale state is
// repaired by the next call, and a call that fails undoes what it created.
//
// The privileged primitives run in-process when banger is root and
// otherwise through `sudo -n bangerd priv OP`, an allow-list that
// `banger doctor --sudoers` prints.
package hostnet

import (
	"context"
	"net/netip"
	"time"
)

// Network is the host side of VM networking.
type Network interface {
	// EnsureBridge creates (or repairs) the bridge with the gateway
	// address, the NAT table, forwarding and the `.vm` routing, then runs
	// the OnBridgeUp steps. On error nothing it created is left.
	EnsureBridge(ctx context.Context) error
	// CreateTAP gives a VM its TAP (from the pool when one is ready),
	// attached to the bridge and up, replacing a stale one of that name.
	CreateTAP(ctx context.Context, name string) error
	// DeleteTAP releases a VM's TAP (back to the pool when there is room);
	// a missing TAP is not an error.
	DeleteTAP(ctx context.Context, name string) error
	// ApplyGuest converges a running guest's rules — its MAC and address
	// (anti-spoofing), its group peers and its egress policy — in one
	// transaction, so new connections see the whole policy at once.
	// DeleteTAP removes them.
	ApplyGuest(ctx context.Context, g Guest) error
	// AllowResolved lets a guest reach addrs on port (0: any) for ttl:
	// what one of its allowed domains resolved to.
	AllowResolved(ctx context.Context, tap string, port uint16, addrs []netip.Addr, ttl time.Duration) error
	// TAPExists reports whether the TAP is present.
	TAPExists(name string) bool
	// Gateway is the bridge address guests route through.
	Gateway() netip.Addr
	// Subnet is the guests' subnet.
	Subnet() netip.Prefix
	// DNSAddr is where banger's DNS server listens (gateway, DNS port).
	DNSAddr() netip.AddrPort
	// OnBridgeUp adds a step that EnsureBridge runs once the bridge is up
	// (the DNS server); its error fails EnsureBridge.
	OnBridgeUp(step func(ctx context.Context) error)
	// Show lists every host object banger created; it changes nothing.
	Show(ctx context.Context) (State, error)
	// Teardown removes every host object banger created.
	Teardown(ctx context.Context) error
}

// Config names the bridge and subnet. It is also the request of every
// privileged operation, so it must stay plain data.
type Config struct {
	Bridge string       `json:"bridge"`
	Subnet netip.Prefix `json:"subnet"`
	// DNSPort is banger's DNS port on the gateway ([network] dns_port);
	// 0 means DNSPortDefault.
	DNSPort int `json:"dns_port"`
	// PoolSize is the number of TAPs kept ready; 0 means DefaultPoolSize,
	// negative means no pool.
	PoolSize int `json:"pool_size"`
	// GuestsReachHost lets guests connect to any service on the host's
	// bridge address; by default they reach only banger's DNS there.
	GuestsReachHost bool `json:"guests_reach_host,omitempty"`
}

// Defaults.
const (
	// DNSPortDefault is the port of banger's DNS server (from the original
	// design); guests reach it on port 53 through a redirect.
	DNSPortDefault = 42069
	// DefaultPoolSize TAPs are kept ready: enough for two creates at once.
	DefaultPoolSize = 2
	// Alias tags every link banger creates; only such links are removed.
	Alias = "banger"
	// TableName is the nftables table banger owns (family ip).
	TableName = "banger"
	// PoolPrefix names pooled TAPs (bgp0, bgp1, ...); VM TAPs are renamed
	// from them.
	PoolPrefix = "bgp"
)

func (c Config) withDefaults() Config {
	c.Subnet = c.Subnet.Masked()
	if c.DNSPort == 0 {
		c.DNSPort = DNSPortDefault
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultPoolSize
	}
	return c
}

// GatewayOf returns the first host address of a subnet.
func GatewayOf(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// Object is one thing banger added to the host.
type Object struct {
	// Kind is link, address, route, nft-table, nft-chain, nft-rule,
	// sysctl, resolved or dns.
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Detail string `json:"detail,omitempty"`
}

// State is what Show finds.
type State struct {
	Objects []Object `json:"objects"`
}

// Empty reports whether banger has nothing on the host.
func (s State) Empty() bool { return len(s.Objects) == 0 }
