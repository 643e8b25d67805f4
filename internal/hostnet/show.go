package hostnet

import (
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
)

// show lists banger's objects in this namespace.
func (o *ops) show() (State, error) {
	var st State
	add := func(kind, name, detail string) { st.Objects = append(st.Objects, Object{kind, name, detail}) }
	links, err := o.bangerLinks()
	if err != nil {
		return st, err
	}
	for _, l := range links {
		a := l.Attrs()
		state := "down"
		if a.Flags&net.FlagUp != 0 {
			state = "up"
		}
		if l.Type() == "bridge" {
			add("link", a.Name, "bridge, "+state)
			addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
			for _, ad := range addrs {
				add("address", ad.IPNet.String(), "on "+a.Name)
			}
			routes, _ := netlink.RouteList(l, netlink.FAMILY_V4)
			for _, r := range routes {
				if r.Dst != nil {
					add("route", r.Dst.String(), "dev "+a.Name)
				}
			}
			continue
		}
		role := "VM TAP"
		if strings.HasPrefix(a.Name, PoolPrefix) {
			role = "pooled TAP (ready for the next VM)"
		}
		owner := ""
		if t, ok := l.(*netlink.Tuntap); ok {
			owner = fmt.Sprintf(", owner uid %d", t.Owner)
		}
		add("link", a.Name, fmt.Sprintf("%s, %s%s", role, state, owner))
	}
	objs, err := listTable()
	if err != nil {
		return st, fmt.Errorf("nftables: %w", err)
	}
	st.Objects = append(st.Objects, objs...)
	if obj, ok := resolvedObject(o.cfg); ok {
		st.Objects = append(st.Objects, obj)
	}
	return st, nil
}
