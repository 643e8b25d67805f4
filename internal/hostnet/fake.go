package hostnet

import (
	"context"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Fake is an in-memory Network for tests. Its OnBridgeUp steps run only
// when RunHooks is set: the fake gateway is usually not an address of this
// host, so a DNS listener could not bind it (tests that want DNS use a
// loopback subnet such as 127.77.0.0/24).
type Fake struct {
	Cfg      Config
	RunHooks bool
	// DeleteTAPErr, when set, makes DeleteTAP fail with it and keep the TAP.
	DeleteTAPErr error

	mu     sync.Mutex
	Bridge bool
	TAPs   map[string]bool
	hooks  []func(context.Context) error
	// Guests are the rules applied, by TAP; Resolved the addresses
	// allowed by AllowResolved, by TAP.
	Guests   map[string]Guest
	Resolved map[string][]netip.Addr
}

var _ Network = (*Fake)(nil)

// NewFake returns a fake network on subnet.
func NewFake(subnet netip.Prefix) *Fake {
	return &Fake{Cfg: Config{Bridge: "fake0", Subnet: subnet}.withDefaults(), TAPs: map[string]bool{},
		Guests: map[string]Guest{}, Resolved: map[string][]netip.Addr{}}
}

func (f *Fake) ApplyGuest(_ context.Context, g Guest) error {
	if err := g.validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Guests[g.TAP] = g
	return nil
}

func (f *Fake) AllowResolved(_ context.Context, tap string, _ uint16, addrs []netip.Addr, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Resolved[tap] = append(f.Resolved[tap], addrs...)
	return nil
}

// Guest returns the rules applied for tap.
func (f *Fake) Guest(tap string) (Guest, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.Guests[tap]
	return g, ok
}

func (f *Fake) EnsureBridge(ctx context.Context) error {
	f.mu.Lock()
	created := !f.Bridge
	f.Bridge = true
	hooks := append([]func(context.Context) error(nil), f.hooks...)
	f.mu.Unlock()
	if !f.RunHooks {
		return nil
	}
	for _, h := range hooks {
		if err := h(ctx); err != nil {
			f.mu.Lock()
			f.Bridge = f.Bridge && !created
			f.mu.Unlock()
			return err
		}
	}
	return nil
}

func (f *Fake) OnBridgeUp(step func(context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks = append(f.hooks, step)
}

func (f *Fake) CreateTAP(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.TAPs[name] = true
	return nil
}

func (f *Fake) DeleteTAP(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.DeleteTAPErr != nil && f.TAPs[name] {
		return f.DeleteTAPErr
	}
	delete(f.TAPs, name)
	delete(f.Guests, name)
	return nil
}

func (f *Fake) TAPExists(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.TAPs[name]
}

// TAPCount is the number of TAPs present.
func (f *Fake) TAPCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.TAPs)
}

func (f *Fake) Show(context.Context) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st State
	if f.Bridge {
		st.Objects = append(st.Objects, Object{Kind: "link", Name: f.Cfg.Bridge, Detail: "bridge, up"})
	}
	var names []string
	for n := range f.TAPs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st.Objects = append(st.Objects, Object{Kind: "link", Name: n, Detail: "VM TAP"})
	}
	return st, nil
}

func (f *Fake) Teardown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Bridge = false
	f.TAPs = map[string]bool{}
	return nil
}

func (f *Fake) Gateway() netip.Addr  { return GatewayOf(f.Cfg.Subnet) }
func (f *Fake) Subnet() netip.Prefix { return f.Cfg.Subnet }
func (f *Fake) DNSAddr() netip.AddrPort {
	return netip.AddrPortFrom(f.Gateway(), uint16(f.Cfg.DNSPort))
}
