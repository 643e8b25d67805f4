package vms

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// portState is what the store keeps of a VM's forwards.
type portState struct {
	// Auto overrides [network] auto_forward for this VM when set.
	Auto     *bool             `json:"auto,omitempty"`
	Forwards []api.ForwardSpec `json:"forwards,omitempty"`
}

// vmForwards are a running VM's live forwards.
type vmForwards struct {
	mu       sync.Mutex
	ip       string
	explicit map[string]*proxy // by fwdKey
	auto     map[int]*proxy    // by guest port
	stopAuto chan struct{}
}

func fwdKey(proto string, hostPort int) string { return fmt.Sprintf("%s/%d", proto, hostPort) }

func (s *Service) portState(ctx context.Context, vmID string) (portState, error) {
	var ps portState
	raw, err := s.Store.GetPorts(ctx, vmID)
	if err != nil || raw == "" {
		return ps, err
	}
	return ps, json.Unmarshal([]byte(raw), &ps)
}

func (s *Service) putPortState(ctx context.Context, vmID string, ps portState) error {
	b, err := json.Marshal(ps)
	if err != nil {
		return err
	}
	return s.Store.PutPorts(ctx, vmID, string(b))
}

func (s *Service) autoOn(ps portState) bool {
	if ps.Auto != nil {
		return *ps.Auto
	}
	return s.Config.Network.AutoForward
}

// parseForwards checks forwards as given (-p, vm forward); the error is
// the first bad one's.
func parseForwards(specs []string, have []api.ForwardSpec) ([]api.ForwardSpec, error) {
	var out []api.ForwardSpec
	for _, sp := range specs {
		f, err := api.ParseForward(sp)
		if err != nil {
			return nil, api.Invalidf("%v", err)
		}
		if slices.ContainsFunc(append(slices.Clone(have), out...), func(h api.ForwardSpec) bool {
			return h.Proto == f.Proto && h.HostPort == f.HostPort
		}) {
			return nil, api.Conflictf("host port %d/%s is already forwarded for this VM (vm forward rm first)", f.HostPort, f.Proto)
		}
		out = append(out, f)
	}
	return out, nil
}

// lockPorts takes a VM's lock and reads its forwards.
func (s *Service) lockPorts(ctx context.Context, name string) (store.VM, portState, func(), error) {
	vm, unlock, err := s.lockResolved(ctx, name)
	if err != nil {
		return vm, portState{}, nil, err
	}
	ps, err := s.portState(ctx, vm.ID)
	if err != nil {
		unlock()
		return vm, ps, nil, err
	}
	return vm, ps, unlock, nil
}

// Forward adds forwards to a VM, kept with it. On a running VM they
// listen at once; on a stopped one the ports are tried now (a port in use
// is refused) and bound when it starts.
func (s *Service) Forward(ctx context.Context, p api.ForwardParams, r progress.Reporter) ([]api.Forward, error) {
	vm, ps, unlock, err := s.lockPorts(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	add, err := parseForwards(p.Forwards, ps.Forwards)
	if err != nil {
		return nil, err
	}
	if len(add) == 0 {
		return nil, api.Invalidf("no forward given: vm forward %s [ADDR:]HOSTPORT:GUESTPORT[/udp]", vm.Name)
	}
	f := s.liveForwards(vm.ID)
	var bound []*proxy
	for _, spec := range add {
		px, err := listenForward(spec)
		if err != nil {
			for _, b := range bound {
				b.close()
			}
			return nil, err
		}
		bound = append(bound, px)
	}
	ps.Forwards = append(ps.Forwards, add...)
	if err := s.putPortState(ctx, vm.ID, ps); err != nil {
		for _, b := range bound {
			b.close()
		}
		return nil, err
	}
	for _, px := range bound {
		if f == nil {
			px.close() // a trial bind: the VM is not running
			continue
		}
		f.mu.Lock()
		px.serve(f.ip)
		f.explicit[fwdKey(px.spec.Proto, px.spec.HostPort)] = px
		f.mu.Unlock()
		progress.Stage(r, "forward", fmt.Sprintf("%s:%d → %s:%d/%s", px.spec.Addr, px.spec.HostPort, vm.Name, px.spec.GuestPort, px.spec.Proto))
	}
	return s.forwardList(ctx, vm.ID)
}

// ForwardList lists a VM's forwards, auto ones included.
func (s *Service) ForwardList(ctx context.Context, p api.NameParams) ([]api.Forward, error) {
	vm, err := s.Resolve(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	return s.forwardList(ctx, vm.ID)
}

func (s *Service) forwardList(ctx context.Context, vmID string) ([]api.Forward, error) {
	ps, err := s.portState(ctx, vmID)
	if err != nil {
		return nil, err
	}
	out := []api.Forward{}
	f := s.liveForwards(vmID)
	if f != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
	}
	for _, spec := range ps.Forwards {
		active := false
		if f != nil {
			_, active = f.explicit[fwdKey(spec.Proto, spec.HostPort)]
		}
		out = append(out, api.Forward{ForwardSpec: spec, Active: active})
	}
	if f != nil {
		for _, px := range f.auto {
			out = append(out, api.Forward{ForwardSpec: px.spec, Auto: true, Active: true})
		}
	}
	slices.SortFunc(out, func(a, b api.Forward) int { return a.HostPort - b.HostPort })
	return out, nil
}

// ForwardRemove removes a VM's forward of a host port.
func (s *Service) ForwardRemove(ctx context.Context, p api.ForwardRemoveParams, _ progress.Reporter) ([]api.Forward, error) {
	vm, ps, unlock, err := s.lockPorts(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	match := func(f api.ForwardSpec) bool { return f.HostPort == p.HostPort && (p.Proto == "" || p.Proto == f.Proto) }
	var gone []api.ForwardSpec
	for _, f := range ps.Forwards {
		if match(f) {
			gone = append(gone, f)
		}
	}
	if len(gone) == 0 {
		if f := s.liveForwards(vm.ID); f != nil {
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, px := range f.auto {
				if match(px.spec) {
					return nil, api.Conflictf("host port %d is auto-forwarded (guest port %d): it goes when the guest stops listening, or with `banger vm forward %s --auto=false`", p.HostPort, px.spec.GuestPort, vm.Name)
				}
			}
		}
		return nil, api.NotFoundf("vm %s forwards no host port %d (see `banger vm forward ls %s`)", vm.Name, p.HostPort, vm.Name)
	}
	ps.Forwards = slices.DeleteFunc(ps.Forwards, match)
	if err := s.putPortState(ctx, vm.ID, ps); err != nil {
		return nil, err
	}
	if f := s.liveForwards(vm.ID); f != nil {
		f.mu.Lock()
		for _, g := range gone {
			if px := f.explicit[fwdKey(g.Proto, g.HostPort)]; px != nil {
				px.close()
				delete(f.explicit, fwdKey(g.Proto, g.HostPort))
			}
		}
		f.mu.Unlock()
	}
	return s.forwardList(ctx, vm.ID)
}

// SetAutoForward turns a VM's auto-forward on or off (kept with it).
func (s *Service) SetAutoForward(ctx context.Context, p api.AutoForwardParams, _ progress.Reporter) ([]api.Forward, error) {
	vm, ps, unlock, err := s.lockPorts(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ps.Auto = &p.On
	if err := s.putPortState(ctx, vm.ID, ps); err != nil {
		return nil, err
	}
	if f := s.liveForwards(vm.ID); f != nil {
		s.setAuto(vm, f, p.On)
	}
	return s.forwardList(ctx, vm.ID)
}

func (s *Service) liveForwards(vmID string) *vmForwards {
	v, ok := s.fwds.Load(vmID)
	if !ok {
		return nil
	}
	return v.(*vmForwards)
}

// startForwards binds a VM's forwards when it starts; one that cannot
// bind (its port taken meanwhile) is logged and listed inactive.
func (s *Service) startForwards(ctx context.Context, vm store.VM) {
	ps, err := s.portState(ctx, vm.ID)
	if err != nil {
		s.Log.Warn("forwards", "vm", vm.Name, "err", err)
		return
	}
	f := &vmForwards{ip: vm.IP, explicit: map[string]*proxy{}, auto: map[int]*proxy{}}
	if old, loaded := s.fwds.LoadOrStore(vm.ID, f); loaded {
		f = old.(*vmForwards)
	}
	f.mu.Lock()
	for _, spec := range ps.Forwards {
		k := fwdKey(spec.Proto, spec.HostPort)
		if f.explicit[k] != nil {
			continue
		}
		px, err := listenForward(spec)
		if err != nil {
			s.Log.Warn("forward", "vm", vm.Name, "forward", spec.String(), "err", err)
			continue
		}
		px.serve(vm.IP)
		f.explicit[k] = px
	}
	f.mu.Unlock()
	s.setAuto(vm, f, s.autoOn(ps))
}

// stopForwards closes a VM's forwards (it stopped).
func (s *Service) stopForwards(vmID string) {
	v, ok := s.fwds.LoadAndDelete(vmID)
	if !ok {
		return
	}
	f := v.(*vmForwards)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopAuto != nil {
		close(f.stopAuto)
		f.stopAuto = nil
	}
	for _, px := range f.explicit {
		px.close()
	}
	for _, px := range f.auto {
		px.close()
	}
	f.explicit, f.auto = map[string]*proxy{}, map[int]*proxy{}
}

// createPorts checks a create's forwards (-p) and auto-forward switch
// before anything is reserved: a bad one, or a host port in use, is
// refused. nil: none asked for.
func createPorts(p api.CreateParams) (*portState, error) {
	if p.Ports == nil {
		return nil, nil
	}
	fw, err := parseForwards(p.Ports.Forwards, nil)
	if err != nil {
		return nil, err
	}
	for _, spec := range fw {
		px, err := listenForward(spec)
		if err != nil {
			return nil, err
		}
		px.close()
	}
	return &portState{Auto: p.Ports.AutoForward, Forwards: fw}, nil
}

// putNetwork records a new VM's policy and forwards.
func (s *Service) putNetwork(ctx context.Context, vmID string, np api.NetPolicy, ports *portState) error {
	if err := s.putNetPolicy(ctx, vmID, np); err != nil {
		return err
	}
	if ports == nil {
		return nil
	}
	return s.putPortState(ctx, vmID, *ports)
}
