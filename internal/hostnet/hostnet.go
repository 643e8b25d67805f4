// Package hostnet owns what banger adds to the host's network: the bridge
// with its gateway address and one TAP device per running VM. Every change
// converges (stale state is removed before creating) so a crash half-way is
// repaired by the next call. NAT and DNS arrive later behind the same
// Network interface.
package hostnet

import (
	"context"
	"net/netip"
)

// Network is the host side of VM networking.
type Network interface {
	// EnsureBridge creates (or repairs) the bridge with the gateway address.
	EnsureBridge(ctx context.Context) error
	// CreateTAP creates a TAP attached to the bridge, replacing a stale one.
	CreateTAP(ctx context.Context, name string) error
	// DeleteTAP removes a TAP; a missing TAP is not an error.
	DeleteTAP(ctx context.Context, name string) error
	// TAPExists reports whether the TAP is present.
	TAPExists(name string) bool
	// Gateway is the bridge address guests route through.
	Gateway() netip.Addr
	// Subnet is the guests' subnet.
	Subnet() netip.Prefix
}

// Config names the bridge and subnet.
type Config struct {
	Bridge string
	Subnet netip.Prefix
}

// GatewayOf returns the first host address of a subnet.
func GatewayOf(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }
