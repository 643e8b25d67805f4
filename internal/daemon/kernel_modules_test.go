package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/vmm"
)

// guestConfigOf reads back the config drive the daemon wrote for a VM.
func guestConfigOf(t *testing.T, h *harness, id string) proto.GuestConfig {
	t.Helper()
	f, err := os.Open(filepath.Join(h.paths.VMDir(id), "config.img"))
	must(t, err)
	defer f.Close()
	cfg, err := proto.DecodeConfigDrive(f)
	must(t, err)
	return cfg
}

func modulesOf(spec vmm.Spec, cfg proto.GuestConfig) (*vmm.Disk, *proto.GuestDisk) {
	var disk *vmm.Disk
	var gd *proto.GuestDisk
	for i := range spec.Disks {
		if spec.Disks[i].ID == artifacts.ModulesDiskID {
			disk = &spec.Disks[i]
		}
	}
	for i := range cfg.Disks {
		if cfg.Disks[i].Role == proto.RoleModules {
			gd = &cfg.Disks[i]
		}
	}
	return disk, gd
}

// A kernel with a module disk gets it attached read-only and named in the
// guest config by role and UUID; a kernel without one (or whose
// kernel.json names a disk that is not there) boots without it.
func TestModulesDiskAttachedWhenTheKernelHasOne(t *testing.T) {
	h := newHarness(t)
	kdir := filepath.Join(h.paths.CacheDir, "kernels", "test")
	writeInfo := func(info kernel.Info) {
		b, _ := json.Marshal(info)
		must(t, os.WriteFile(filepath.Join(kdir, kernel.InfoFile), b, 0o644))
	}
	const uuid = "5d1c0f0e-8a4b-4c3d-9e2f-1a2b3c4d5e6f"

	vm := h.create("plain")
	disk, gd := modulesOf(h.drv.LastSpec(), guestConfigOf(t, h, vm.ID))
	if disk != nil || gd != nil {
		t.Fatalf("kernel without kernel.json: disk %+v, config %+v", disk, gd)
	}

	writeInfo(kernel.Info{Release: "6.1-test", ModulesUUID: uuid})
	vm = h.create("nofile")
	disk, gd = modulesOf(h.drv.LastSpec(), guestConfigOf(t, h, vm.ID))
	if disk != nil || gd != nil {
		t.Fatalf("uuid but no modules.ext4: disk %+v, config %+v", disk, gd)
	}

	must(t, os.WriteFile(filepath.Join(kdir, kernel.ModulesDiskFile), []byte("ext4"), 0o444))
	vm = h.create("withmods")
	spec := h.drv.LastSpec()
	cfg := guestConfigOf(t, h, vm.ID)
	disk, gd = modulesOf(spec, cfg)
	if disk == nil || !disk.ReadOnly || disk.Path != filepath.Join(kdir, kernel.ModulesDiskFile) {
		t.Fatalf("modules disk %+v in %+v", disk, spec.Disks)
	}
	if gd == nil || gd.UUID != uuid {
		t.Fatalf("guest config disks %+v", cfg.Disks)
	}
	// The VM's own disks are all still there.
	roles := map[string]bool{}
	for _, d := range cfg.Disks {
		roles[d.Role] = true
	}
	for _, r := range []string{proto.RoleBase, proto.RoleOverlay, proto.RoleWork, proto.RoleModules} {
		if !roles[r] {
			t.Errorf("role %s missing from %+v", r, cfg.Disks)
		}
	}
	if len(spec.Disks) != 5 {
		t.Errorf("disks %+v", spec.Disks)
	}
}
