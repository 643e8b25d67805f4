package vms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// defaultNetPolicy is [network] default_policy with its allow/deny lists.
func (s *Service) defaultNetPolicy() api.NetPolicy {
	n := s.Config.Network
	if n.DefaultPolicy == "" {
		n.DefaultPolicy = api.NetNAT
	}
	return api.NetPolicy{Mode: n.DefaultPolicy, AllowOut: splitRules(n.DefaultAllowOut), DenyOut: splitRules(n.DefaultDenyOut)}
}

func splitRules(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// netPolicy is a VM's recorded policy, or the default for a VM that has
// none (created before issue 16).
func (s *Service) netPolicy(ctx context.Context, vmID string) (api.NetPolicy, error) {
	raw, err := s.Store.GetNetPolicy(ctx, vmID)
	if errors.Is(err, store.ErrNotFound) {
		return s.defaultNetPolicy(), nil
	}
	if err != nil {
		return api.NetPolicy{}, err
	}
	var p api.NetPolicy
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return api.NetPolicy{}, fmt.Errorf("vm %s: stored network policy: %w", vmID, err)
	}
	return p, nil
}

// checkNetPolicy validates a policy as the host can enforce it; the
// error names the flag to change.
func checkNetPolicy(p api.NetPolicy) error {
	if err := p.Validate(); err != nil {
		return api.Invalidf("%v", err)
	}
	if _, err := egressOf(p); err != nil {
		return api.Invalidf("%v", err)
	}
	return nil
}

// egressOf turns a policy into the host's rules.
func egressOf(p api.NetPolicy) (hostnet.Egress, error) {
	e := hostnet.Egress{Isolated: p.Mode == api.NetIsolated}
	for _, l := range []struct {
		rules []string
		to    *[]hostnet.Dest
	}{{p.AllowOut, &e.Allow}, {p.DenyOut, &e.Deny}} {
		for _, s := range l.rules {
			r, err := api.ParseNetRule(s)
			if err != nil {
				return e, err
			}
			if r.Domain != "" {
				// A domain is enforced by banger's DNS answers: what it
				// resolves to joins an allowed set. There is nothing to
				// deny that way (the guest could use the address).
				if l.to == &e.Deny {
					return e, fmt.Errorf("--deny-out %q: a domain can only be allowed; deny its addresses as CIDRs", s)
				}
				if !slices.Contains(e.DomainPorts, r.Port) {
					e.DomainPorts = append(e.DomainPorts, r.Port)
				}
				continue
			}
			*l.to = append(*l.to, hostnet.Dest{Prefix: r.Prefix, Port: r.Port})
		}
	}
	return e, nil
}

// putNetPolicy records a policy (validated by the caller).
func (s *Service) putNetPolicy(ctx context.Context, vmID string, p api.NetPolicy) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.Store.PutNetPolicy(ctx, vmID, string(b))
}

// applyNet installs a running VM's rules on the host: its MAC and
// address, its group peers (running VMs of the same group) and its
// egress policy.
func (s *Service) applyNet(ctx context.Context, vm store.VM) error {
	p, err := s.netPolicy(ctx, vm.ID)
	if err != nil {
		return err
	}
	e, err := egressOf(p)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(vm.IP)
	if err != nil {
		return fmt.Errorf("vm %s: address %q: %w", vm.Name, vm.IP, err)
	}
	g := hostnet.Guest{TAP: TAPName(vm.ID), MAC: vm.MAC, IP: ip, Egress: e}
	s.domains.Store(ip, guestDomains{vmID: vm.ID, tap: g.TAP, rules: domainRules(p), isolated: p.Mode == api.NetIsolated})
	if p.Group != "" {
		all, err := s.Store.ListVMs(ctx)
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.ID == vm.ID || s.instance(o.ID) == nil {
				continue
			}
			if op, err := s.netPolicy(ctx, o.ID); err == nil && op.Group == p.Group {
				g.Peers = append(g.Peers, TAPName(o.ID))
			}
		}
	}
	return s.Net.ApplyGuest(ctx, g)
}

// SetNetPolicy changes a VM's network policy. On a running VM the new
// rules replace the old ones in one transaction: new connections see the
// new policy at once (established ones continue). The HTTP API's
// PUT /sandboxes/{id}/network calls this too (see api.NetPolicy).
func (s *Service) SetNetPolicy(ctx context.Context, p api.SetNetParams, r progress.Reporter) (api.VM, error) {
	ctx = context.WithoutCancel(ctx)
	vm, unlock, err := s.lockResolved(ctx, p.Name)
	if err != nil {
		return api.VM{}, err
	}
	defer unlock()
	old, err := s.netPolicy(ctx, vm.ID)
	if err != nil {
		return api.VM{}, err
	}
	np := old
	if p.Mode != nil {
		np.Mode = *p.Mode
	}
	if p.AllowOut != nil {
		np.AllowOut = slices.Clone(*p.AllowOut)
	}
	if p.DenyOut != nil {
		np.DenyOut = slices.Clone(*p.DenyOut)
	}
	if err := checkNetPolicy(np); err != nil {
		return api.VM{}, err
	}
	if err := s.putNetPolicy(ctx, vm.ID, np); err != nil {
		return api.VM{}, err
	}
	if s.instance(vm.ID) != nil {
		progress.Stage(r, "network", "applying the new policy to the running VM")
		if err := s.applyNet(ctx, vm); err != nil {
			// Put the old policy back, in the store and on the host.
			s.putNetPolicy(ctx, vm.ID, old)
			s.applyNet(ctx, vm)
			return api.VM{}, fmt.Errorf("network: %w", err)
		}
	}
	return s.View(vm), nil
}

// createNetPolicy is a new VM's policy: the one asked for (an empty mode
// is the default mode) or the default, checked before anything is
// reserved. It is recorded with the VM, so a later change of the default
// leaves existing VMs as they are.
func (s *Service) createNetPolicy(asked *api.NetPolicy) (api.NetPolicy, error) {
	np := s.defaultNetPolicy()
	if asked != nil {
		mode := np.Mode
		np = *asked
		if np.Mode == "" {
			np.Mode = mode
		}
	}
	return np, checkNetPolicy(np)
}

// guestDomains are a running guest's allowed domains, for banger's DNS.
type guestDomains struct {
	vmID, tap string
	rules     []api.NetRule
	isolated  bool // mode isolated: only allowed domains are resolved
}

func domainRules(p api.NetPolicy) []api.NetRule {
	var out []api.NetRule
	for _, s := range p.AllowOut {
		if r, err := api.ParseNetRule(s); err == nil && r.Domain != "" {
			out = append(out, r)
		}
	}
	return out
}

// GuestDNS is what banger's DNS needs to know of the running guest at
// addr: its TAP, its allowed domain rules (the network service adds
// their answers to the guest's allowed set) and whether it is isolated
// (then only those domains are resolved for it, besides `.vm` names).
func (s *Service) GuestDNS(addr netip.Addr) (tap string, rules []api.NetRule, isolated bool) {
	v, ok := s.domains.Load(addr)
	if !ok {
		return "", nil, false
	}
	d := v.(guestDomains)
	if s.instance(d.vmID) == nil {
		return "", nil, false
	}
	return d.tap, d.rules, d.isolated
}
