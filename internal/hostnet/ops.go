package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ops are the privileged primitives. They act on the network namespace
// of the calling OS thread: in-process (Linux.inNS pins that thread) or in
// the `bangerd priv` helper run through sudo. Each one either
// completes or undoes its own partial work.
type ops struct {
	cfg      Config // with defaults
	uid, gid int    // owner of created TAPs (the user, also under sudo)
}

// Created says what one ensure made, so that a later failure (the DNS
// server, in the daemon) can undo exactly that.
type Created struct {
	Bridge     bool `json:"bridge,omitempty"`
	Table      bool `json:"table,omitempty"`
	Forwarding bool `json:"forwarding,omitempty"`
	Resolved   bool `json:"resolved,omitempty"`
	// BridgeTable: the table "bridge banger" (guard.go).
	BridgeTable bool `json:"bridge_table,omitempty"`
	// Rebuilt is not something created: a table was rebuilt, which
	// dropped the guests' rules, so the caller re-applies them.
	Rebuilt bool `json:"rebuilt,omitempty"`
}

var (
	ifaceRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)
	// tapRe are the only TAP names banger creates, renames or deletes:
	// VM TAPs (bgt<id>) and pooled ones (bgp<n>).
	tapRe = regexp.MustCompile(`^bg[tp][a-z0-9]{1,12}$`)
)

func (c Config) validate() error {
	if !ifaceRe.MatchString(c.Bridge) {
		return fmt.Errorf("bridge name %q is not a valid interface name for banger", c.Bridge)
	}
	if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() || c.Subnet.Bits() < 16 || c.Subnet.Bits() > 29 {
		return fmt.Errorf("subnet %s: want an IPv4 prefix between /16 and /29", c.Subnet)
	}
	if c.DNSPort <= 0 || c.DNSPort > 65535 {
		return fmt.Errorf("dns port %d out of range", c.DNSPort)
	}
	return nil
}

func checkTAPName(name string) error {
	if !tapRe.MatchString(name) {
		return fmt.Errorf("%q is not a banger TAP name", name)
	}
	return nil
}

func notFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// ensure converges everything but the TAPs. On error it has undone what
// it created.
func (o *ops) ensure() (c Created, err error) {
	defer func() {
		if err != nil {
			o.undo(c)
			c = Created{}
		}
	}()
	if c.Bridge, err = o.ensureBridge(); err != nil {
		return c, err
	}
	if c.Table, c.Rebuilt, err = ensureTable(o.cfg); err != nil {
		return c, fmt.Errorf("nftables: %w", err)
	}
	var rebuilt bool
	if c.BridgeTable, rebuilt, err = ensureBridgeTable(); err != nil {
		return c, fmt.Errorf("nftables (bridge family): %w", err)
	}
	c.Rebuilt = c.Rebuilt || rebuilt
	if err = bridgeSysctls(o.cfg.Bridge); err != nil {
		return c, err
	}
	if c.Forwarding, err = ensureForwarding(); err != nil {
		return c, err
	}
	if c.Resolved, err = routeResolved(o.cfg); err != nil {
		return c, fmt.Errorf("systemd-resolved: %w", err)
	}
	return c, nil
}

// undo reverts what one ensure created, newest first.
func (o *ops) undo(c Created) error {
	var errs []error
	if c.Resolved {
		errs = append(errs, revertResolved(o.cfg))
	}
	if c.Forwarding {
		errs = append(errs, restoreForwarding())
	}
	if c.BridgeTable {
		errs = append(errs, deleteTableOf(bridgeTable))
	}
	if c.Table {
		errs = append(errs, deleteTable())
	}
	if c.Bridge {
		if l, err := netlink.LinkByName(o.cfg.Bridge); err == nil && l.Attrs().Alias == Alias {
			errs = append(errs, netlink.LinkDel(l))
		}
	}
	return errors.Join(errs...)
}

func (o *ops) ensureBridge() (created bool, err error) {
	br := o.cfg.Bridge
	link, err := netlink.LinkByName(br)
	switch {
	case err != nil && !notFound(err):
		return false, fmt.Errorf("look up bridge %s: %w", br, err)
	case err != nil:
		if err := checkNoRouteClash(o.cfg.Subnet, -1); err != nil {
			return false, err
		}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}}); err != nil {
			return false, fmt.Errorf("create bridge %s: %w", br, err)
		}
		created = true
		defer func() {
			if err != nil {
				if l, e := netlink.LinkByName(br); e == nil {
					netlink.LinkDel(l)
				}
			}
		}()
		if link, err = netlink.LinkByName(br); err != nil {
			return created, err
		}
		if err = netlink.LinkSetAlias(link, Alias); err != nil {
			return created, fmt.Errorf("tag bridge %s: %w", br, err)
		}
	case link.Type() != "bridge":
		return false, fmt.Errorf("%s exists and is a %s, not a bridge: set [network] bridge in config.toml", br, link.Type())
	case link.Attrs().Alias != Alias:
		return false, fmt.Errorf("bridge %s exists and was not created by banger (its alias is %q, not %q): set [network] bridge in config.toml to another name",
			br, link.Attrs().Alias, Alias)
	}
	gw := &netlink.Addr{IPNet: &net.IPNet{IP: GatewayOf(o.cfg.Subnet).AsSlice(), Mask: net.CIDRMask(o.cfg.Subnet.Bits(), 32)}}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return created, err
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == gw.IPNet.String() {
			have = true
			continue
		}
		// The bridge is banger's: an address from an earlier subnet goes.
		if err = netlink.AddrDel(link, &a); err != nil {
			return created, fmt.Errorf("remove old address %s from %s: %w", a.IPNet, br, err)
		}
	}
	if !have {
		if !created {
			if err = checkNoRouteClash(o.cfg.Subnet, link.Attrs().Index); err != nil {
				return created, err
			}
		}
		if err = netlink.AddrAdd(link, gw); err != nil && !errors.Is(err, os.ErrExist) {
			return created, fmt.Errorf("address bridge %s: %w", br, err)
		}
	}
	if err = netlink.LinkSetUp(link); err != nil {
		return created, fmt.Errorf("bring up bridge %s: %w", br, err)
	}
	return created, nil
}

// checkNoRouteClash refuses a subnet that overlaps a route the host
// already has (other than on the bridge itself), which would silently
// break either the host or the VMs.
func checkNoRouteClash(subnet netip.Prefix, ownIndex int) error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list host routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.LinkIndex == ownIndex {
			continue
		}
		p, err := netip.ParsePrefix(r.Dst.String())
		if err == nil && p.Bits() > 0 && p.Overlaps(subnet) {
			return fmt.Errorf("subnet %s overlaps the host route %s: choose another [network] subnet in config.toml", subnet, p)
		}
	}
	return nil
}

// tapAdd creates a TAP on the bridge, owned by the user, tagged; pooled
// TAPs stay down until a VM takes them.
func (o *ops) tapAdd(name string, up bool) error {
	br, err := netlink.LinkByName(o.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", o.cfg.Bridge, err)
	}
	if err := o.tapDel(name); err != nil {
		return err
	}
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_DEFAULTS | netlink.TUNTAP_VNET_HDR,
		Owner:     uint32(o.uid),
		Group:     uint32(o.gid),
	}
	if err := netlink.LinkAdd(tap); err != nil {
		return fmt.Errorf("create tap %s: %w", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetAlias(link, Alias)
	}
	if err == nil && up {
		err = netlink.LinkSetUp(link)
	}
	if err != nil {
		o.tapDel(name)
		return fmt.Errorf("set up tap %s: %w", name, err)
	}
	return nil
}

// ownTAP returns the TAP called name if banger may change it.
func ownTAP(name string) (netlink.Link, error) {
	if err := checkTAPName(name); err != nil {
		return nil, err
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	if l.Type() != "tuntap" {
		return nil, fmt.Errorf("%s is a %s, not a TAP: refusing to touch it", name, l.Type())
	}
	return l, nil
}

// tapTake renames a pooled TAP for a VM and brings it up.
func (o *ops) tapTake(from, to string) error {
	if err := checkTAPName(to); err != nil {
		return err
	}
	l, err := ownTAP(from)
	if err != nil {
		return err
	}
	if l.Attrs().Alias != Alias {
		return fmt.Errorf("%s is not a pooled banger TAP", from)
	}
	if err := o.tapDel(to); err != nil {
		return err
	}
	if err := netlink.LinkSetDown(l); err != nil {
		return err
	}
	if err := netlink.LinkSetName(l, to); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	if br, err := netlink.LinkByName(o.cfg.Bridge); err == nil && l.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
			return err
		}
	}
	return netlink.LinkSetUp(l)
}

// errTAPInUse means a process still holds the TAP: it cannot be pooled.
var errTAPInUse = errors.New("tap is still attached to a process")

// tapReturn puts a VM's TAP back in the pool under a pool name.
func (o *ops) tapReturn(from, to string) error {
	if err := checkTAPName(to); err != nil {
		return err
	}
	l, err := ownTAP(from)
	if err != nil {
		return err
	}
	// Carrier (LOWER_UP) is on while a VMM has the TAP open.
	if l.Attrs().Alias != Alias || l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0 {
		return errTAPInUse
	}
	if _, err := netlink.LinkByName(to); err == nil {
		return fmt.Errorf("pool name %s is taken", to)
	}
	if err := netlink.LinkSetDown(l); err != nil {
		return err
	}
	return netlink.LinkSetName(l, to)
}

// tapDel deletes a TAP; a missing one is not an error.
func (o *ops) tapDel(name string) error {
	l, err := ownTAP(name)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !notFound(err) {
		return fmt.Errorf("delete tap %s: %w", name, err)
	}
	return nil
}

// bangerLinks are the links carrying banger's alias, bridge first.
func (o *ops) bangerLinks() ([]netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		switch {
		case a.Name == o.cfg.Bridge && a.Alias == Alias && l.Type() == "bridge":
			out = append([]netlink.Link{l}, out...)
		case l.Type() == "tuntap" && tapRe.MatchString(a.Name) && a.Alias == Alias:
			out = append(out, l)
		}
	}
	return out, nil
}

// teardown removes everything banger created here, continuing past
// errors so that one stuck object does not keep the others.
func (o *ops) teardown() error {
	var errs []error
	errs = append(errs, revertResolved(o.cfg))
	links, err := o.bangerLinks()
	errs = append(errs, err)
	for i := len(links) - 1; i >= 0; i-- { // TAPs first, the bridge last
		if err := netlink.LinkDel(links[i]); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", links[i].Attrs().Name, err))
		}
	}
	errs = append(errs, restoreForwarding(), deleteTable(), deleteTableOf(bridgeTable))
	return errors.Join(errs...)
}
