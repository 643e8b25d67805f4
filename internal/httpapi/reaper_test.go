package httpapi

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/store"
)

func TestReaper(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	now := r.now
	p := &Reaper{VMs: r.vms, Records: r.recs, Now: func() time.Time { return now }}
	mk := func(name, state string, autoPause bool, dl time.Duration) string {
		vm := r.vms.add(name, state)
		r.recs.PutSandbox(ctx, store.Sandbox{VMID: vm.ID, AutoPause: autoPause, Deadline: now.Add(dl), StartedAt: now})
		return vm.ID
	}
	mk("expired", store.StateRunning, false, -time.Second)
	pausing := mk("pausing", store.StateRunning, true, 0)
	mk("later", store.StateRunning, false, time.Minute)
	saved := mk("saved", store.StateSaved, false, -time.Hour)
	mk("booting", store.StateCreating, false, -time.Hour)
	mk("crashed", store.StateFailed, false, -time.Hour) // a create the daemon did not finish
	cli := r.vms.add("cli-made", store.StateRunning)    // no record: never timed out
	p.Round(ctx)
	r.recs.forget(r.vms)
	for name, want := range map[string]string{
		"expired": "", "crashed": "", "pausing": store.StateSaved, "later": store.StateRunning,
		"saved": store.StateSaved, "booting": store.StateCreating, cli.Name: store.StateRunning,
	} {
		vm, ok := r.vms.vms[name]
		switch {
		case want == "" && ok:
			t.Errorf("%s: still there (%s), want deleted", name, vm.State)
		case want != "" && (!ok || vm.State != want):
			t.Errorf("%s: %v, want %s", name, vm, want)
		}
	}
	for _, id := range []string{pausing, saved} {
		if rec, _ := r.recs.GetSandbox(ctx, id); !rec.Deadline.IsZero() {
			t.Errorf("%s: a paused sandbox keeps deadline %v", id, rec.Deadline)
		}
	}
	// a failed action is retried, but not every round
	r.vms.failNext["delete"] = errors.New("busy")
	now = now.Add(2 * time.Minute) // "later" is due now
	p.Round(ctx)
	if _, ok := r.vms.vms["later"]; !ok {
		t.Fatal("a failing delete deleted")
	}
	r.vms.calls = nil
	p.Round(ctx)
	if slices.Contains(r.vms.calls, "delete") {
		t.Fatalf("retried at once: %v", r.vms.calls)
	}
	now = now.Add(retryAfter)
	p.Round(ctx)
	if _, ok := r.vms.vms["later"]; ok {
		t.Fatal("not retried after retryAfter")
	}
}

// TestReaperRun: Run acts at once (a deadline that passed while no daemon
// ran) and stops with its context.
func TestReaperRun(t *testing.T) {
	r := newRig(t)
	vm := r.vms.add("old", store.StateRunning)
	r.recs.PutSandbox(context.Background(), store.Sandbox{VMID: vm.ID, Deadline: time.Now().Add(-time.Hour)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { (&Reaper{VMs: r.vms, Records: r.recs, Every: time.Hour}).Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.vms.mu.Lock()
		_, there := r.vms.vms["old"]
		r.vms.mu.Unlock()
		if !there {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not reap at its start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
