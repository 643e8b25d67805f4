package daemon

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/fake"
	"github.com/banger-dev/banger/internal/vms"
)

// warmHarness is a harness with warm starts on ([snapshots] warm). The
// fake's agent runs on the host: a template's settling and a clone's
// reidentify are recorded, not done.
func warmHarness(t *testing.T) (*harness, *reidents) {
	rec := &reidents{}
	old := guestClock
	guestClock = vms.GuestClock{
		Reidentify: rec.reidentify,
		Settle:     func(*agentclient.Client, context.Context) (string, error) { return "agent", nil },
	}
	t.Cleanup(func() { guestClock = old })
	h := newHarness(t)
	h.stop()
	on := true
	h.cfg.Snapshots.Warm = &on
	h.start()
	// the kernel file is part of a template's key
	must(t, os.WriteFile(filepath.Join(h.paths.CacheDir, "kernels", "test", "vmlinuz"), []byte("kernel"), 0o600))
	return h, rec
}

// createProgress creates a VM and returns it with its progress lines.
func (h *harness) createProgress(p api.CreateParams) (api.VM, []string) {
	h.t.Helper()
	var vm api.VM
	var lines []string
	p.WaitSSH = true
	must(h.t, h.client.Call(context.Background(), api.MethodVMCreate, p, &vm, func(ev api.Progress) {
		lines = append(lines, ev.Stage+": "+ev.Message)
	}))
	return vm, lines
}

// templates waits until n complete templates exist and returns them.
func (h *harness) templates(n int) []string {
	h.t.Helper()
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = nil
		ents, _ := os.ReadDir(filepath.Join(h.paths.CacheDir, "warm"))
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".tmp") && exists(filepath.Join(h.paths.CacheDir, "warm", e.Name(), "meta.json")) {
				got = append(got, e.Name())
			}
		}
		if len(got) == n {
			return got
		}
	}
	h.t.Fatalf("templates %q, want %d", got, n)
	return nil
}

// The first create boots cold and captures a template in the background;
// later creates start warm from it (captured once), each with its own
// identity; --cold boots.
func TestWarmCreateCapturesOnceThenStartsWarm(t *testing.T) {
	h, rec := warmHarness(t)
	a, lines := h.createProgress(api.CreateParams{Name: "a"})
	if a.StartedFrom != "boot" || strings.Contains(strings.Join(lines, "\n"), "warm") {
		t.Errorf("first create: started from %q, progress %q", a.StartedFrom, lines)
	}
	key := h.templates(1)[0]
	sshStage := func(lines []string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, "ssh: ") {
				return l
			}
		}
		return ""
	}
	coldSSH := sshStage(lines)
	b, lines := h.createProgress(api.CreateParams{Name: "b"})
	// A warm create deals with sshd as a cold one does (here: the image
	// has none).
	if coldSSH == "" || strings.Replace(sshStage(lines), " b ", " a ", 1) != coldSSH {
		t.Errorf("sshd stage: cold %q, warm %q", coldSSH, sshStage(lines))
	}
	if b.StartedFrom != "snapshot "+key[:12] || !strings.Contains(strings.Join(lines, "\n"), "warm from start-up snapshot "+key[:12]) {
		t.Errorf("second create: started from %q, progress %q", b.StartedFrom, lines)
	}
	c, _ := h.createProgress(api.CreateParams{Name: "c"})
	if c.StartedFrom != b.StartedFrom {
		t.Errorf("third create: started from %q", c.StartedFrom)
	}
	if h.drv.Restores != 2 || h.drv.SaveStates != 1 {
		t.Errorf("restores %d, saves %d: want 2 warm starts from 1 capture", h.drv.Restores, h.drv.SaveStates)
	}
	spec := h.drv.Machine(b.ID).Spec()
	if spec.Memory.File != filepath.Join(h.paths.CacheDir, "warm", key, "mem") || spec.Memory.Shared {
		t.Errorf("warm spec: memory %+v", spec.Memory)
	}
	// each clone got its own identity, renumbered from the template's NIC
	var meta struct {
		MAC         string `json:"mac"`
		OverlayUUID string `json:"overlay_uuid"`
	}
	b2, err := os.ReadFile(filepath.Join(h.paths.CacheDir, "warm", key, "meta.json"))
	must(t, err)
	must(t, json.Unmarshal(b2, &meta))
	calls := rec.list()
	if len(calls) != 2 || calls[0].Hostname != "b" || calls[1].Hostname != "c" || calls[0].OldMAC != meta.MAC ||
		calls[0].Net.MAC != b.MAC || calls[0].MachineID == calls[1].MachineID || calls[0].SSHHostKeys["ssh_host_ed25519_key.pub"] == calls[1].SSHHostKeys["ssh_host_ed25519_key.pub"] {
		t.Errorf("reidentify calls %+v (template MAC %s)", calls, meta.MAC)
	}
	// its disks are copies of the template's, whose UUIDs it records
	head := func(p string) string { // the superblock holds the UUID
		f, err := os.Open(p)
		must(t, err)
		defer f.Close()
		b := make([]byte, 8192)
		n, _ := f.Read(b)
		return string(b[:n])
	}
	for _, d := range []string{"overlay", "work"} {
		if head(filepath.Join(h.paths.StateDir, "vms", b.ID, d+".ext4")) != head(filepath.Join(h.paths.CacheDir, "warm", key, d+".img")) {
			t.Errorf("%s disk of b is not a copy of the template's", d)
		}
	}
	if !strings.Contains(head(filepath.Join(h.paths.StateDir, "vms", b.ID, "overlay.ext4")), string(uuidBytes(t, meta.OverlayUUID))) {
		t.Errorf("the template's overlay UUID %s is not in its disk", meta.OverlayUUID)
	}
	if b.IP == c.IP || b.MAC == c.MAC || spec.Net.MAC != b.MAC {
		t.Errorf("clones share identity: %s/%s %s/%s (spec mac %s)", b.IP, c.IP, b.MAC, c.MAC, spec.Net.MAC)
	}
	h.echo("b", "warm")
	d, _ := h.createProgress(api.CreateParams{Name: "d", Cold: true})
	if d.StartedFrom != "boot" || h.drv.Restores != 2 {
		t.Errorf("--cold: started from %q, restores %d", d.StartedFrom, h.drv.Restores)
	}
}

// A template that fails to start a VM is retired and the VM boots cold
// with one warning; the next capture replaces it.
func TestWarmStartFailureFallsBackCold(t *testing.T) {
	h, _ := warmHarness(t)
	h.createProgress(api.CreateParams{Name: "a"})
	key := h.templates(1)[0]
	dir := filepath.Join(h.paths.CacheDir, "warm", key)
	must(t, os.WriteFile(filepath.Join(dir, fake.StateFile), []byte("garbage"), 0o600))
	b, lines := h.createProgress(api.CreateParams{Name: "b"})
	var warnings []string
	for _, l := range lines {
		if strings.Contains(l, "warning:") {
			warnings = append(warnings, l)
		}
	}
	if b.StartedFrom != "boot" || b.State != "running" || len(warnings) != 1 || !strings.Contains(warnings[0], "booting cold") {
		t.Errorf("started from %q, state %s, warnings %q", b.StartedFrom, b.State, warnings)
	}
	h.echo("b", "cold")
	if h.templates(1)[0] != key { // recaptured after the cold boot
		t.Error("another key")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, fake.StateFile)); string(b) == "garbage" {
		t.Error("the broken template was kept")
	}
	c, _ := h.createProgress(api.CreateParams{Name: "c"})
	if !strings.HasPrefix(c.StartedFrom, "snapshot ") {
		t.Errorf("after recapture: started from %q", c.StartedFrom)
	}
}

// A rebuilt image (another file identity) has another key: its first VM
// boots cold and a second template is captured.
func TestWarmKeyFollowsTheImage(t *testing.T) {
	h, _ := warmHarness(t)
	h.createProgress(api.CreateParams{Name: "a"})
	first := h.templates(1)[0]
	img := filepath.Join(h.paths.CacheDir, "rootfs.ext4")
	must(t, os.WriteFile(img, []byte("image, rebuilt"), 0o600))
	b, _ := h.createProgress(api.CreateParams{Name: "b"})
	if b.StartedFrom != "boot" {
		t.Errorf("after an image rebuild: started from %q", b.StartedFrom)
	}
	got := h.templates(2)
	if got[0] != first && got[1] != first {
		t.Errorf("templates %q lost %s", got, first)
	}
}

// A capture that fails is logged and tried once more per key, never
// again in this daemon's life; the creates themselves are not affected.
func TestWarmCaptureRetriedOnce(t *testing.T) {
	h, _ := warmHarness(t)
	var mu sync.Mutex
	tries := 0
	h.drv.StartHook = func(_ context.Context, spec vmm.Spec) error {
		if strings.HasPrefix(spec.ID, "warm-") {
			mu.Lock()
			tries++
			mu.Unlock()
			return errors.New("template refused")
		}
		return nil
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return tries
	}
	for i, name := range []string{"a", "b", "c"} {
		vm, _ := h.createProgress(api.CreateParams{Name: name})
		if vm.StartedFrom != "boot" || vm.State != "running" {
			t.Errorf("%s: %s, started from %q", name, vm.State, vm.StartedFrom)
		}
		want := min(i+1, 2)
		for deadline := time.Now().Add(5 * time.Second); count() < want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // a further capture would have started by now
		if got := count(); got != want {
			t.Errorf("after %s: %d capture tries, want %d", name, got, want)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(h.paths.CacheDir, "warm")); len(ents) != 0 {
		t.Errorf("failed captures left %d entries", len(ents))
	}
}

// uuidBytes is a UUID's 16 bytes, as a superblock stores it.
func uuidBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	must(t, err)
	return b
}
