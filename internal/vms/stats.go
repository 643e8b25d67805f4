package vms

import (
	"context"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// statsCache keeps the last sample of each running VM, so CPU use
// can be derived from the tick counters.
type statsCache struct {
	mu   sync.Mutex
	last map[string]sample
}

type sample struct {
	at    time.Time
	stats proto.Stats
	cpu   float64
}

// PollStats samples every running VM at stats_poll_interval until ctx
// ends (a daemon service).
func (s *Service) PollStats(ctx context.Context) {
	t := time.NewTicker(s.Config.StatsPollInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.pollStats(ctx)
		}
	}
}

func (s *Service) pollStats(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.instances))
	for id := range s.instances {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if vm, err := s.Store.GetVM(ctx, id); err == nil && vm.State == store.StatePaused {
			continue // its agent cannot answer until it is resumed
		}
		if _, err := s.sampleStats(ctx, id); err != nil {
			s.Log.Debug("stats poll", "vm", id, "err", err)
		}
	}
	s.statsc.forget(ids)
}

// sampleStats asks the agent for a snapshot and folds it into the cache.
func (s *Service) sampleStats(ctx context.Context, id string) (sample, error) {
	in := s.instance(id)
	if in == nil {
		return sample{}, errNotRunning
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ac, err := in.agentClient(ctx)
	if err != nil {
		return sample{}, err
	}
	var st proto.Stats
	if err := ac.Do(ctx, proto.OpStats, nil, &st); err != nil {
		return sample{}, err
	}
	return s.statsc.add(id, st), nil
}

func (c *statsCache) add(id string, st proto.Stats) sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]sample{}
	}
	s := sample{at: time.Now(), stats: st}
	if prev, ok := c.last[id]; ok && st.CPUTotalTicks > prev.stats.CPUTotalTicks {
		s.cpu = 100 * float64(st.CPUBusyTicks-prev.stats.CPUBusyTicks) / float64(st.CPUTotalTicks-prev.stats.CPUTotalTicks)
	} else if st.CPUTotalTicks > 0 {
		s.cpu = 100 * float64(st.CPUBusyTicks) / float64(st.CPUTotalTicks) // since boot
	}
	c.last[id] = s
	return s
}

func (c *statsCache) get(id string) (sample, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.last[id]
	return s, ok
}

// forget drops samples of VMs that no longer run.
func (c *statsCache) forget(running []string) {
	keep := map[string]bool{}
	for _, id := range running {
		keep[id] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.last {
		if !keep[id] {
			delete(c.last, id)
		}
	}
}

// Stats returns the last polled sample, sampling now when there is none
// yet or it is older than two poll intervals.
func (s *Service) Stats(ctx context.Context, name string) (api.VMStats, error) {
	vm, err := s.Resolve(ctx, name)
	if err != nil {
		return api.VMStats{}, err
	}
	if s.instance(vm.ID) == nil {
		return api.VMStats{}, api.Conflictf("vm %s is %s: stats come from the running guest", vm.Name, vm.State)
	}
	if vm.State == store.StatePaused {
		return api.VMStats{}, isPaused(vm)
	}
	smp, ok := s.statsc.get(vm.ID)
	if !ok || time.Since(smp.at) > 2*s.Config.StatsPollInterval.Duration {
		if smp, err = s.sampleStats(ctx, vm.ID); err != nil {
			return api.VMStats{}, err
		}
	}
	st := smp.stats
	return api.VMStats{
		Name: vm.Name, SampledAt: smp.at, UptimeSeconds: st.UptimeSeconds, CPUs: st.CPUs, CPUPercent: smp.cpu,
		Load1: st.Load1, MemTotalBytes: st.MemTotalBytes, MemUsedBytes: st.MemTotalBytes - st.MemAvailBytes,
		WorkDiskBytes: st.WorkDiskBytes, WorkDiskUsed: st.WorkDiskUsed, RootDiskBytes: st.RootDiskBytes, RootDiskUsed: st.RootDiskUsed,
	}, nil
}

// Ports lists the guest's listening sockets.
func (s *Service) Ports(ctx context.Context, name string) ([]api.Port, error) {
	vm, err := s.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	in := s.instance(vm.ID)
	if in == nil {
		return nil, api.Conflictf("vm %s is %s: ports come from the running guest", vm.Name, vm.State)
	}
	if vm.State == store.StatePaused {
		return nil, isPaused(vm)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ac, err := in.agentClient(ctx)
	if err != nil {
		return nil, err
	}
	var ports []proto.Port
	if err := ac.Do(ctx, proto.OpPorts, nil, &ports); err != nil {
		return nil, err
	}
	out := make([]api.Port, 0, len(ports))
	for _, p := range ports {
		out = append(out, api.Port(p))
	}
	return out, nil
}
