package hostnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
)

// Linux manages the bridge and TAPs through netlink (root needed).
type Linux struct {
	cfg Config
	log *slog.Logger
}

var _ Network = (*Linux)(nil)

// NewLinux returns the netlink-backed network.
func NewLinux(cfg Config, log *slog.Logger) *Linux { return &Linux{cfg: cfg, log: log} }

func (l *Linux) Gateway() netip.Addr  { return GatewayOf(l.cfg.Subnet) }
func (l *Linux) Subnet() netip.Prefix { return l.cfg.Subnet }

func (l *Linux) EnsureBridge(ctx context.Context) error {
	link, err := netlink.LinkByName(l.cfg.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up bridge %s: %w", l.cfg.Bridge, err)
		}
		if err := l.checkNoRouteClash(); err != nil {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: l.cfg.Bridge}}
		l.log.Info("host change", "op", "create bridge", "name", l.cfg.Bridge)
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w (banger needs root or CAP_NET_ADMIN for networking)", l.cfg.Bridge, err)
		}
		if link, err = netlink.LinkByName(l.cfg.Bridge); err != nil {
			return err
		}
	} else if link.Type() != "bridge" {
		return fmt.Errorf("%s exists and is a %s, not a bridge: set [network] bridge in config.toml", l.cfg.Bridge, link.Type())
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: l.Gateway().AsSlice(), Mask: net.CIDRMask(l.cfg.Subnet.Bits(), 32)}}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == gw.IPNet.String() {
			have = true
		}
	}
	if !have {
		l.log.Info("host change", "op", "add address", "link", l.cfg.Bridge, "addr", gw.IPNet.String())
		if err := netlink.AddrAdd(link, gw); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("address bridge %s: %w", l.cfg.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", l.cfg.Bridge, err)
	}
	return nil
}

// checkNoRouteClash refuses a subnet that overlaps a route the host
// already has, which would silently break either the host or the VMs.
func (l *Linux) checkNoRouteClash() error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list host routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		p, err := netip.ParsePrefix(r.Dst.String())
		if err == nil && p.Bits() > 0 && p.Overlaps(l.cfg.Subnet) {
			return fmt.Errorf("subnet %s overlaps the host route %s: choose another [network] subnet in config.toml", l.cfg.Subnet, p)
		}
	}
	return nil
}

func (l *Linux) CreateTAP(ctx context.Context, name string) error {
	if err := l.DeleteTAP(ctx, name); err != nil {
		return err
	}
	br, err := netlink.LinkByName(l.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", l.cfg.Bridge, err)
	}
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_DEFAULTS | netlink.TUNTAP_VNET_HDR,
		Owner:     uint32(os.Getuid()),
		Group:     uint32(os.Getgid()),
	}
	l.log.Info("host change", "op", "create tap", "name", name, "bridge", l.cfg.Bridge)
	if err := netlink.LinkAdd(tap); err != nil {
		return fmt.Errorf("create tap %s: %w", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetUp(link)
	}
	if err != nil {
		l.DeleteTAP(ctx, name)
		return fmt.Errorf("bring up tap %s: %w", name, err)
	}
	return nil
}

func (l *Linux) DeleteTAP(ctx context.Context, name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	l.log.Info("host change", "op", "delete tap", "name", name)
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete tap %s: %w", name, err)
	}
	return nil
}

func (l *Linux) TAPExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}
