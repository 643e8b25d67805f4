package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// ReaperVMs is what the reaper needs of the VM service (*vms.Service).
type ReaperVMs interface {
	List(ctx context.Context) ([]api.VM, error)
	Delete(ctx context.Context, name string) (api.VM, error)
	StopSave(ctx context.Context, name string, r progress.Reporter) (api.VM, error)
}

// Reaper enforces sandboxes' timeouts: a running sandbox past its
// deadline is deleted, or with autoPause paused (`vm stop --save`). The
// deadlines are in the store, so a daemon restarted after one passed
// acts on it at its first round. It runs whether or not the HTTP API
// listens: a timeout set is a promise.
type Reaper struct {
	VMs     ReaperVMs
	Records Records
	Log     *slog.Logger
	Now     func() time.Time
	// Every is how often deadlines are checked (default 1 s).
	Every time.Duration

	retryAt map[string]time.Time // VMs whose last action failed
}

// retryAfter is how long a VM whose expiry action failed is left alone.
const retryAfter = 30 * time.Second

// Run checks deadlines until ctx ends.
func (p *Reaper) Run(ctx context.Context) {
	every := p.Every
	if every == 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round acts once on every sandbox past its deadline.
func (p *Reaper) Round(ctx context.Context) {
	now := p.now()
	recs, err := p.Records.ListSandboxes(ctx)
	if err != nil {
		p.log().Warn("sandbox timeouts: listing sandboxes", "err", err)
		return
	}
	var due []store.Sandbox
	for _, rec := range recs {
		if !rec.Deadline.IsZero() && !rec.Deadline.After(now) && !p.retryAt[rec.VMID].After(now) {
			due = append(due, rec)
		}
	}
	if len(due) == 0 {
		return
	}
	list, err := p.VMs.List(ctx)
	if err != nil {
		p.log().Warn("sandbox timeouts: listing VMs", "err", err)
		return
	}
	byID := map[string]api.VM{}
	for _, vm := range list {
		byID[vm.ID] = vm
	}
	for _, rec := range due {
		if vm, ok := byID[rec.VMID]; ok {
			p.expire(ctx, vm, rec)
		}
	}
}

func (p *Reaper) expire(ctx context.Context, vm api.VM, rec store.Sandbox) {
	var err error
	switch {
	case vm.State == store.StateCreating || vm.State == store.StateStarting || vm.State == store.StateStopping:
		return // mid-operation: the next round sees where it went
	case sandboxState(vm.State) == statePaused:
		err = p.Records.SetSandboxDeadline(ctx, vm.ID, time.Time{}) // paused sandboxes do not time out
	case vm.State == store.StateRunning && rec.AutoPause:
		p.log().Info("sandbox timed out: pausing", "sandbox", vm.Name)
		if _, err = p.VMs.StopSave(ctx, vm.Name, nil); err == nil {
			err = p.Records.SetSandboxDeadline(ctx, vm.ID, time.Time{})
		}
	default: // running, or failed (a create the daemon did not finish)
		p.log().Info("sandbox timed out: deleting", "sandbox", vm.Name, "state", vm.State)
		_, err = p.VMs.Delete(ctx, vm.Name)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		p.log().Warn("sandbox timeout", "sandbox", vm.Name, "err", err, "retry_in", retryAfter)
		if p.retryAt == nil {
			p.retryAt = map[string]time.Time{}
		}
		p.retryAt[vm.ID] = p.now().Add(retryAfter)
	}
}

func (p *Reaper) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Reaper) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}
