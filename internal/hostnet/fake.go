package hostnet

import (
	"context"
	"net/netip"
	"sync"
)

// Fake is an in-memory Network for tests.
type Fake struct {
	Cfg    Config
	mu     sync.Mutex
	Bridge bool
	TAPs   map[string]bool
}

var _ Network = (*Fake)(nil)

// NewFake returns a fake network on subnet.
func NewFake(subnet netip.Prefix) *Fake {
	return &Fake{Cfg: Config{Bridge: "fake0", Subnet: subnet}, TAPs: map[string]bool{}}
}

func (f *Fake) EnsureBridge(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Bridge = true
	return nil
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
	delete(f.TAPs, name)
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

func (f *Fake) Gateway() netip.Addr  { return GatewayOf(f.Cfg.Subnet) }
func (f *Fake) Subnet() netip.Prefix { return f.Cfg.Subnet }
