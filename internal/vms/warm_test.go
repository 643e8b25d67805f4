package vms

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/fake"
)

// The key follows everything a template must match and nothing per-VM.
func TestWarmKey(t *testing.T) {
	s, _, _ := snapService(t)
	s.Keys = &guestssh.Keys{Dir: t.TempDir()} // its authorized key is in the template
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	spec := vmm.Spec{VCPU: 2, MemoryMiB: 1024, Kernel: file("vmlinuz", "k"), Initrd: file("initrd", "agent v1"),
		Disks: []vmm.Disk{{ID: "base", Path: file("image", "img"), ReadOnly: true}, {ID: "overlay", Path: "/vm1/overlay"},
			{ID: "config", Path: "/vm1/config", ReadOnly: true}},
		Net: &vmm.NetIface{TAP: "bgt1", MAC: "52:54:00:00:00:01"}}
	drv := fake.New()
	plan := BootPlan{Image: store.Image{Name: "img"}}
	vm := store.VM{DiskBytes: 8 << 30}
	key := func(sp vmm.Spec) string {
		k, err := s.warmKey(drv, plan, vm, sp)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key(spec)
	other := spec
	other.Disks = []vmm.Disk{spec.Disks[0], {ID: "overlay", Path: "/vm2/overlay"}, {ID: "config", Path: "/vm2/config", ReadOnly: true}}
	other.Net = &vmm.NetIface{TAP: "bgt2", MAC: "52:54:00:00:00:02"}
	if key(other) != base {
		t.Error("the key depends on per-VM paths or the MAC")
	}
	for name, change := range map[string]func(*vmm.Spec){
		"vcpu":   func(sp *vmm.Spec) { sp.VCPU = 1 },
		"memory": func(sp *vmm.Spec) { sp.MemoryMiB = 2048 },
		"no nic": func(sp *vmm.Spec) { sp.Net = nil },
		"disks":  func(sp *vmm.Spec) { sp.Disks = sp.Disks[:2] },
	} {
		sp := spec
		change(&sp)
		if key(sp) == base {
			t.Errorf("%s: same key", name)
		}
	}
	vm.DiskBytes = 16 << 30 // a clone's disks are copies of the template's
	if key(spec) == base {
		t.Error("disk size: same key")
	}
	vm.DiskBytes = 8 << 30
	time.Sleep(10 * time.Millisecond)
	file("initrd", "agent v2")
	if k := key(spec); k == base {
		t.Error("a new agent (initrd) kept the key")
	} else {
		base = k
	}
	file("image", "img rebuilt")
	if key(spec) == base {
		t.Error("a rebuilt image kept the key")
	}
}

// Daemon start keeps complete templates of existing images, and
// unfinished captures young enough to be at work, only.
func TestPruneTemplates(t *testing.T) {
	s, _, _ := snapService(t)
	s.Paths.CacheDir = t.TempDir()
	for name, image := range map[string]string{"keep": "img", "gone": "deleted-image", "broken": ""} {
		dir := s.warmDir(name)
		os.MkdirAll(dir, 0o700)
		if image != "" {
			b, _ := json.Marshal(warmMeta{Format: warmFormat, Key: name, Image: image})
			os.WriteFile(filepath.Join(dir, "meta.json"), b, 0o600)
		}
	}
	os.MkdirAll(s.warmDir("half")+".ab12.tmp", 0o700)
	old := time.Now().Add(-2 * staleCapture)
	os.Chtimes(s.warmDir("half")+".ab12.tmp", old, old)
	// another daemon's capture in the same cache, at work now
	os.MkdirAll(s.warmDir("busy")+".cd34.tmp", 0o700)
	s.PruneTemplates(context.Background())
	ents, _ := os.ReadDir(s.warmRoot())
	if len(ents) != 2 || ents[0].Name() != "busy.cd34.tmp" || ents[1].Name() != "keep" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left %q, want [busy.cd34.tmp keep]", names)
	}
}
