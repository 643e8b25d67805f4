package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// linkPoll is how often the NIC is looked for: virtio_net may still be
// probing when the agent gets here.
const linkPoll = 20 * time.Millisecond

// configureNetwork brings up lo and gives the NIC with the configured MAC
// its static address and default route. The kernel has no ip= support
// and the image runs no network manager: this is all the guest gets.
func configureNetwork(ctx context.Context, n *proto.GuestNet, log *slog.Logger) error {
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			log.Warn("bring up lo", "err", err)
		}
	}
	if n == nil {
		return nil
	}
	mac, err := net.ParseMAC(n.MAC)
	if err != nil {
		return fmt.Errorf("parse mac %q: %w", n.MAC, err)
	}
	addr, err := netlink.ParseAddr(n.Address)
	if err != nil {
		return fmt.Errorf("parse address %q: %w", n.Address, err)
	}
	link, err := waitForLink(ctx, mac)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", n.Address, name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	if n.Gateway != "" {
		gw := net.ParseIP(n.Gateway)
		if gw == nil {
			return fmt.Errorf("parse gateway %q", n.Gateway)
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("default route via %s: %w", n.Gateway, err)
		}
	}
	log.Info("network configured", "link", name, "address", n.Address, "gateway", n.Gateway)
	return nil
}

func waitForLink(ctx context.Context, mac net.HardwareAddr) (netlink.Link, error) {
	t := time.NewTicker(linkPoll)
	defer t.Stop()
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		for _, l := range links {
			if bytes.Equal(l.Attrs().HardwareAddr, mac) {
				return l, nil
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("no network interface with MAC %s (is virtio_net loaded?)", mac)
		}
	}
}
