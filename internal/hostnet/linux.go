package hostnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Linux is the real host network. It acts on the network namespace that
// was current when it was made (the daemon's; a test's own namespace),
// whichever goroutine calls it.
type Linux struct {
	cfg Config
	log *slog.Logger
	ns  netns.NsHandle // -1: the caller's namespace

	// sudo and helper are set when banger is not root: privileged
	// operations run as `sudo -n helper priv OP`.
	sudo, helper string

	ensureMu sync.Mutex // EnsureBridge and Teardown
	hooksMu  sync.Mutex
	hooks    []func(context.Context) error

	guestsMu sync.Mutex
	guests   map[string]Guest // TAP → rules applied (guests.go)

	poolMu  sync.Mutex
	slots   map[string]slotState // pool TAP name → state
	filling bool
	poolOff bool
	fillWG  sync.WaitGroup
}

type slotState int

const (
	slotEmpty slotState = iota
	slotBusy            // being created or returned
	slotReady
)

var _ Network = (*Linux)(nil)

// NewLinux returns the netlink/nftables-backed network. When banger is
// not root, privileged operations go through `sudo -n` and this binary
// (bangerd) in its helper mode, named by its real path (see HelperPath).
func NewLinux(cfg Config, log *slog.Logger) *Linux {
	// The pool starts off: before the first EnsureBridge its TAPs (left by
	// an earlier daemon) are not known yet.
	l := &Linux{cfg: cfg.withDefaults(), log: log, ns: -1, slots: map[string]slotState{}, poolOff: true,
		guests: map[string]Guest{}}
	if ns, err := netns.Get(); err == nil {
		l.ns = ns
	}
	if os.Geteuid() != 0 {
		helper, err := HelperPath()
		if err != nil {
			helper = "bangerd"
		}
		l.UseSudo("sudo", helper)
	}
	return l
}

// UseSudo makes privileged operations run as `sudo -n helper priv OP`
// (tests point sudo at a stand-in).
func (l *Linux) UseSudo(sudo, helper string) { l.sudo, l.helper = sudo, helper }

// Close releases the namespace handle.
func (l *Linux) Close() error {
	if l.ns >= 0 {
		return l.ns.Close()
	}
	return nil
}

func (l *Linux) Gateway() netip.Addr  { return GatewayOf(l.cfg.Subnet) }
func (l *Linux) Subnet() netip.Prefix { return l.cfg.Subnet }
func (l *Linux) DNSAddr() netip.AddrPort {
	return netip.AddrPortFrom(l.Gateway(), uint16(l.cfg.DNSPort))
}

func (l *Linux) OnBridgeUp(step func(context.Context) error) {
	l.hooksMu.Lock()
	defer l.hooksMu.Unlock()
	l.hooks = append(l.hooks, step)
}

// inNS runs fn on an OS thread in l's namespace. A thread that had to
// switch namespace is never unlocked, so Go discards it afterwards
// instead of reusing it for unrelated work.
func (l *Linux) inNS(fn func() error) error {
	if l.ns < 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		cur, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer cur.Close()
		if cur.Equal(l.ns) {
			defer runtime.UnlockOSThread()
		} else if err := netns.Set(l.ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// call performs one privileged operation, in-process or through sudo.
func (l *Linux) call(ctx context.Context, req request) (response, error) {
	req.Config = l.cfg
	var resp response
	err := l.inNS(func() error {
		if l.sudo == "" {
			o := &ops{cfg: l.cfg, uid: os.Getuid(), gid: os.Getgid()}
			resp = o.do(req)
			return nil
		}
		return l.sudoCall(ctx, req, &resp)
	})
	if err == nil && resp.Error != "" {
		err = errors.New(resp.Error)
	}
	return resp, err
}

func (l *Linux) sudoCall(ctx context.Context, req request, resp *response) error {
	in, _ := json.Marshal(req)
	cmd := exec.CommandContext(ctx, l.sudo, "-n", l.helper, "priv", req.Op)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, &errb
	runErr := cmd.Run()
	if err := json.Unmarshal(out.Bytes(), resp); err != nil || runErr != nil && resp.Error == "" {
		msg := strings.TrimSpace(errb.String())
		if msg == "" && runErr != nil {
			msg = runErr.Error()
		}
		return fmt.Errorf("privileged network operation %s failed: `sudo -n %s priv %s`: %s (banger is not root; if sudo wants a password, allow banger's operations with `banger doctor --sudoers`)",
			req.Op, l.helper, req.Op, msg)
	}
	return nil
}

// EnsureBridge converges bridge, NAT, forwarding and `.vm` routing, runs
// the OnBridgeUp steps, and starts filling the TAP pool.
func (l *Linux) EnsureBridge(ctx context.Context) error {
	l.ensureMu.Lock()
	defer l.ensureMu.Unlock()
	resp, err := l.call(ctx, request{Op: "ensure"})
	if err != nil {
		return err
	}
	if c := resp.Created; c != (Created{}) {
		l.log.Info("host change", "op", "ensure network", "bridge", l.cfg.Bridge, "subnet", l.cfg.Subnet,
			"created_bridge", c.Bridge, "created_nft_table", c.Table, "enabled_ip_forward", c.Forwarding, "routed_resolved", c.Resolved,
			"created_bridge_table", c.BridgeTable, "rebuilt_tables", c.Rebuilt)
	}
	if c := resp.Created; c.Rebuilt || c.Table || c.BridgeTable {
		l.reapplyGuests(ctx)
	}
	l.hooksMu.Lock()
	hooks := append([]func(context.Context) error(nil), l.hooks...)
	l.hooksMu.Unlock()
	for _, h := range hooks {
		if err := h(ctx); err != nil {
			if _, uerr := l.call(context.WithoutCancel(ctx), request{Op: "undo", Created: resp.Created}); uerr != nil {
				l.log.Warn("undo network setup", "err", uerr)
			}
			return err
		}
	}
	l.poolMu.Lock()
	l.poolOff = false
	l.poolMu.Unlock()
	l.refreshPool()
	l.kickFill()
	return nil
}

func (l *Linux) TAPExists(name string) bool {
	err := l.inNS(func() error {
		_, err := netlink.LinkByName(name)
		return err
	})
	return err == nil
}

// Show lists banger's objects; it never creates anything.
func (l *Linux) Show(ctx context.Context) (State, error) {
	resp, err := l.call(ctx, request{Op: "show"})
	return resp.State, err
}

// Teardown stops the pool and removes everything banger created.
func (l *Linux) Teardown(ctx context.Context) error {
	l.ensureMu.Lock()
	defer l.ensureMu.Unlock()
	l.poolMu.Lock()
	l.poolOff = true
	l.slots = map[string]slotState{}
	l.poolMu.Unlock()
	l.fillWG.Wait()
	l.log.Info("host change", "op", "teardown network", "bridge", l.cfg.Bridge)
	_, err := l.call(ctx, request{Op: "teardown"})
	return err
}
