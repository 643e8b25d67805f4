package hostnet

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// ApplyGuest installs (or replaces) a guest's rules and remembers them,
// also when that fails, so that a table made or rebuilt later gets them
// (a daemon restarted after an upgrade re-attaches its VMs before the
// network is ensured).
func (l *Linux) ApplyGuest(ctx context.Context, g Guest) error {
	if err := g.validate(); err != nil {
		return err
	}
	l.guestsMu.Lock()
	l.guests[g.TAP] = g
	l.guestsMu.Unlock()
	if _, err := l.call(ctx, request{Op: "guest-apply", Guest: &g}); err != nil {
		return err
	}
	l.log.Info("host change", "op", "apply guest rules", "tap", g.TAP, "ip", g.IP, "isolated", g.Egress.Isolated,
		"allow", len(g.Egress.Allow), "deny", len(g.Egress.Deny), "domain_ports", g.Egress.DomainPorts, "peers", g.Peers)
	return nil
}

func (l *Linux) AllowResolved(ctx context.Context, tap string, port uint16, addrs []netip.Addr, ttl time.Duration) error {
	_, err := l.call(ctx, request{Op: "guest-allow", Name: tap, Port: port, Addrs: addrs, TTL: ttl})
	return err
}

// removeGuest drops a VM TAP's rules before the TAP goes back to the pool
// or away: the next guest on it starts with none.
func (l *Linux) removeGuest(ctx context.Context, tap string) {
	if !strings.HasPrefix(tap, "bgt") {
		return
	}
	l.guestsMu.Lock()
	delete(l.guests, tap)
	l.guestsMu.Unlock()
	if _, err := l.call(ctx, request{Op: "guest-del", Name: tap}); err != nil {
		l.log.Warn("remove guest rules", "tap", tap, "err", err)
	}
}

// reapplyGuests puts every known guest's rules back after a table
// rebuild.
func (l *Linux) reapplyGuests(ctx context.Context) {
	l.guestsMu.Lock()
	gs := make([]Guest, 0, len(l.guests))
	for _, g := range l.guests {
		gs = append(gs, g)
	}
	l.guestsMu.Unlock()
	for _, g := range gs {
		if err := l.ApplyGuest(ctx, g); err != nil {
			l.log.Warn("re-apply guest rules", "tap", g.TAP, "err", err)
		}
	}
}
