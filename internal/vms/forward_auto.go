package vms

import (
	"context"
	"net/netip"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// autoPoll is how often auto-forward asks the guest agent for its
// listening ports.
const autoPoll = 500 * time.Millisecond

func (s *Service) setAuto(vm store.VM, f *vmForwards, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case on && f.stopAuto == nil:
		f.stopAuto = make(chan struct{})
		go s.autoForward(vm, f, f.stopAuto)
	case !on && f.stopAuto != nil:
		close(f.stopAuto)
		f.stopAuto = nil
		for p, px := range f.auto {
			px.close()
			delete(f.auto, p)
		}
	}
}

// autoForward follows the guest's TCP listeners: each new one gets the
// same port on 127.0.0.1 when free, else the next free one; a closed
// listener's forward goes.
func (s *Service) autoForward(vm store.VM, f *vmForwards, stop chan struct{}) {
	t := time.NewTicker(autoPoll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		in := s.instance(vm.ID)
		if in == nil || in.paused.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var ports []proto.Port
		ac, err := in.agentClient(ctx)
		if err == nil {
			err = ac.Do(ctx, proto.OpPorts, nil, &ports)
		}
		cancel()
		if err != nil {
			continue
		}
		want := map[int]bool{}
		for _, p := range ports {
			if reachable(p, vm.IP) {
				want[p.Port] = true
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		f.mu.Lock()
		for gp, px := range f.auto {
			if !want[gp] {
				px.close()
				delete(f.auto, gp)
				s.Log.Info("auto-forward removed", "vm", vm.Name, "guest_port", gp, "host_port", px.spec.HostPort)
			}
		}
		for gp := range want {
			if f.auto[gp] != nil || forwardsGuestPort(f, gp) {
				continue
			}
			if px := bindFree(gp); px != nil {
				px.auto = true
				px.serve(f.ip)
				f.auto[gp] = px
				s.Log.Info("auto-forward", "vm", vm.Name, "guest_port", gp, "host_port", px.spec.HostPort)
			}
		}
		f.mu.Unlock()
	}
}

// reachable: a TCP listener the host can reach (not the guest's
// loopback), other than sshd's port 22 (banger's own way in).
func reachable(p proto.Port, guestIP string) bool {
	if p.Proto != "tcp" && p.Proto != "tcp6" || p.Port == 22 {
		return false
	}
	a, err := netip.ParseAddr(p.Address)
	return err == nil && (a.IsUnspecified() || a.String() == guestIP)
}

func forwardsGuestPort(f *vmForwards, gp int) bool {
	for _, px := range f.explicit {
		if px.spec.GuestPort == gp && px.spec.Proto == "tcp" {
			return true
		}
	}
	return false
}

// bindFree binds 127.0.0.1:port, else the next free port (up to 100
// further; privileged ports start the search at 1024+port).
func bindFree(port int) *proxy {
	start := port
	for hp := start; hp < start+100 && hp <= 65535; hp++ {
		px, err := listenForward(api.ForwardSpec{Addr: "127.0.0.1", HostPort: hp, GuestPort: port, Proto: "tcp"})
		if err == nil {
			return px
		}
		if hp == start && hp < 1024 {
			return bindFree1024(port)
		}
	}
	return nil
}

func bindFree1024(port int) *proxy {
	for hp := 1024 + port; hp < 1124+port && hp <= 65535; hp++ {
		if px, err := listenForward(api.ForwardSpec{Addr: "127.0.0.1", HostPort: hp, GuestPort: port, Proto: "tcp"}); err == nil {
			return px
		}
	}
	return nil
}
