package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
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

func init() {
	// The poller samples every running VM at stats_poll_interval.
	services = append(services, func(ctx context.Context, d *Daemon) (func(), error) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(d.cfg.StatsPollInterval.Duration)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					d.pollStats(ctx)
				}
			}
		}()
		return func() {
			cancel()
			<-done
		}, nil
	})
}

func (d *Daemon) pollStats(ctx context.Context) {
	d.mu.Lock()
	ids := make([]string, 0, len(d.instances))
	for id := range d.instances {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		if _, err := d.sampleStats(ctx, id); err != nil {
			d.log.Debug("stats poll", "vm", id, "err", err)
		}
	}
	d.statsc.forget(ids)
}

// sampleStats asks the agent for a snapshot and folds it into the cache.
func (d *Daemon) sampleStats(ctx context.Context, id string) (sample, error) {
	in := d.instance(id)
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
	return d.statsc.add(id, st), nil
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

// handleStats returns the last polled sample, sampling now when there is
// none yet or it is older than two poll intervals.
func (d *Daemon) handleStats(ctx context.Context, c *rpc.Call) (any, error) {
	vm, err := d.lookup(ctx, c)
	if err != nil {
		return nil, err
	}
	if d.instance(vm.ID) == nil {
		return nil, conflict("vm %s is %s: stats come from the running guest", vm.Name, vm.State)
	}
	s, ok := d.statsc.get(vm.ID)
	if !ok || time.Since(s.at) > 2*d.cfg.StatsPollInterval.Duration {
		if s, err = d.sampleStats(ctx, vm.ID); err != nil {
			return nil, err
		}
	}
	st := s.stats
	return api.VMStats{
		Name: vm.Name, SampledAt: s.at, UptimeSeconds: st.UptimeSeconds, CPUs: st.CPUs, CPUPercent: s.cpu,
		Load1: st.Load1, MemTotalBytes: st.MemTotalBytes, MemUsedBytes: st.MemTotalBytes - st.MemAvailBytes,
		WorkDiskBytes: st.WorkDiskBytes, WorkDiskUsed: st.WorkDiskUsed, RootDiskBytes: st.RootDiskBytes, RootDiskUsed: st.RootDiskUsed,
	}, nil
}

func (d *Daemon) handlePorts(ctx context.Context, c *rpc.Call) (any, error) {
	vm, err := d.lookup(ctx, c)
	if err != nil {
		return nil, err
	}
	in := d.instance(vm.ID)
	if in == nil {
		return nil, conflict("vm %s is %s: ports come from the running guest", vm.Name, vm.State)
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
