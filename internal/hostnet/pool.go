package hostnet

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
)

// The TAP pool: PoolSize TAPs (bgp0, bgp1, ...) wait on the bridge, down
// and tagged. A VM takes one by renaming it to its own TAP name and
// bringing it up (two netlink calls instead of opening /dev/net/tun,
// creating, attaching and tagging a link); a background goroutine
// replaces it. A VM's TAP that nothing holds any more goes back to the
// pool instead of being deleted. The pool is rebuilt from the host after
// a daemon restart (the slot names are fixed).

func (l *Linux) slotName(i int) string { return fmt.Sprintf("%s%d", PoolPrefix, i) }

// refreshPool marks the pool TAPs that exist as ready.
func (l *Linux) refreshPool() {
	for i := 0; i < l.cfg.PoolSize; i++ {
		name := l.slotName(i)
		exists := l.inNS(func() error {
			lk, err := netlink.LinkByName(name)
			if err == nil && lk.Attrs().Alias != Alias {
				err = fmt.Errorf("%s is not banger's", name)
			}
			return err
		}) == nil
		l.poolMu.Lock()
		if l.slots[name] != slotBusy {
			l.slots[name] = slotEmpty
			if exists {
				l.slots[name] = slotReady
			}
		}
		l.poolMu.Unlock()
	}
}

// claim marks a slot busy and returns it: a ready one (for a VM) or an
// empty one (to fill). The caller holds poolMu.
func (l *Linux) claim(want slotState) string {
	if l.poolOff {
		return ""
	}
	for i := 0; i < l.cfg.PoolSize; i++ {
		if name := l.slotName(i); l.slots[name] == want {
			l.slots[name] = slotBusy
			return name
		}
	}
	return ""
}

func (l *Linux) settle(name string, s slotState) {
	l.poolMu.Lock()
	defer l.poolMu.Unlock()
	if !l.poolOff {
		l.slots[name] = s
	}
}

// kickFill starts the filler unless it runs already.
func (l *Linux) kickFill() {
	l.poolMu.Lock()
	defer l.poolMu.Unlock()
	if l.filling || l.poolOff || l.cfg.PoolSize <= 0 {
		return
	}
	l.filling = true
	l.fillWG.Add(1)
	go func() {
		defer l.fillWG.Done()
		for {
			l.poolMu.Lock()
			slot := l.claim(slotEmpty)
			if slot == "" {
				l.filling = false
				l.poolMu.Unlock()
				return
			}
			l.poolMu.Unlock()
			if _, err := l.call(context.Background(), request{Op: "tap-add", Name: slot}); err != nil {
				l.log.Warn("fill tap pool", "tap", slot, "err", err)
				l.poolMu.Lock()
				if !l.poolOff {
					l.slots[slot] = slotEmpty
				}
				l.filling = false
				l.poolMu.Unlock()
				return
			}
			l.settle(slot, slotReady)
		}
	}()
}

// CreateTAP gives a VM its TAP: a pooled one renamed, or a fresh one when
// the pool is empty. A stale TAP of that name is replaced.
func (l *Linux) CreateTAP(ctx context.Context, name string) error {
	if err := checkTAPName(name); err != nil {
		return err
	}
	l.poolMu.Lock()
	slot := l.claim(slotReady)
	l.poolMu.Unlock()
	if slot != "" {
		_, err := l.call(ctx, request{Op: "tap-take", Name: slot, To: name})
		l.settle(slot, slotEmpty)
		l.kickFill()
		if err == nil {
			l.log.Info("host change", "op", "take pooled tap", "pool", slot, "name", name, "bridge", l.cfg.Bridge)
			return nil
		}
		l.log.Warn("take pooled tap; creating one", "pool", slot, "err", err)
		l.call(ctx, request{Op: "tap-del", Name: slot})
	}
	l.log.Info("host change", "op", "create tap", "name", name, "bridge", l.cfg.Bridge)
	if _, err := l.call(ctx, request{Op: "tap-add", Name: name, Up: true}); err != nil {
		return err
	}
	l.kickFill()
	return nil
}

// DeleteTAP returns a VM's TAP to the pool when a slot is free and nothing
// holds it, and deletes it otherwise. A missing TAP is not an error.
func (l *Linux) DeleteTAP(ctx context.Context, name string) error {
	if err := checkTAPName(name); err != nil {
		return err
	}
	l.removeGuest(ctx, name)
	l.poolMu.Lock()
	slot := l.claim(slotEmpty)
	l.poolMu.Unlock()
	if slot != "" {
		resp, err := l.call(ctx, request{Op: "tap-return", Name: name, To: slot})
		if err == nil {
			l.settle(slot, slotReady)
			l.log.Info("host change", "op", "return tap to pool", "name", name, "pool", slot)
			return nil
		}
		l.settle(slot, slotEmpty)
		l.kickFill()
		if resp.Missing {
			return nil
		}
		if !resp.InUse {
			l.log.Warn("return tap to pool; deleting it", "name", name, "err", err)
		}
	}
	if !l.TAPExists(name) {
		return nil
	}
	l.log.Info("host change", "op", "delete tap", "name", name)
	_, err := l.call(ctx, request{Op: "tap-del", Name: name})
	return err
}
