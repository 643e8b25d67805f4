package artifacts

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// ModulesDiskID is the module disk's drive id (vmm.Disk: [A-Za-z0-9_]).
const ModulesDiskID = "modules"

// KernelModules returns the kernel's module disk and its UUID, or ok=false
// when it has none (catalog bundles, loose files, imports from before
// module disks): such a VM boots as before, without /lib/modules.
func KernelModules(k store.Kernel) (disk vmm.Disk, gd proto.GuestDisk, ok bool) {
	info, err := kernel.Load(k.Dir)
	if err != nil || !kernel.HasModulesDisk(k.Dir, info) {
		return vmm.Disk{}, proto.GuestDisk{}, false
	}
	return vmm.Disk{ID: ModulesDiskID, Path: filepath.Join(k.Dir, kernel.ModulesDiskFile), ReadOnly: true},
		proto.GuestDisk{Role: proto.RoleModules, UUID: info.ModulesUUID}, true
}

// upgradeKernelModules adds a module disk to a registered Debian import
// made before they existed, so users' kernels gain modprobe without a
// re-import. It is tried once per kernel directory and daemon; a failure
// (offline host, package gone from the archive) is a warning, never a
// failed boot: the kernel works without the disk.
func (s *Service) upgradeKernelModules(ctx context.Context, k store.Kernel, r progress.Reporter) {
	// Only the import cache: catalog and loose-file kernels have no
	// package to fetch, and a .deb import's file may be gone.
	if filepath.Dir(k.Dir) != filepath.Join(s.paths.CacheDir, "kernels") || strings.HasPrefix(k.Source, "deb-") {
		return
	}
	info, err := kernel.Load(k.Dir)
	if err != nil || info.Package == "" || kernel.HasModulesDisk(k.Dir, info) {
		return
	}
	if _, tried := s.modulesTried.LoadOrStore(k.Dir, true); tried {
		return
	}
	s.provisionMu.Lock()
	defer s.provisionMu.Unlock()
	progress.Stage(r, "kernel", "kernel "+k.Name+" has no "+kernel.ModulesDiskFile+" (modprobe in the guest): adding it")
	_, err = kernel.AddModulesDisk(ctx, kernel.ImportOptions{Dir: k.Dir, Package: info.Package,
		Progress: r})
	if err != nil {
		s.log.Warn("add module disk", "kernel", k.Name, "err", err)
		progress.Stage(r, "kernel", "warning: "+err.Error()+"; booting without /lib/modules")
	}
}

// ModulesDisk is KernelModules as a method, so that the service is what
// the VM service asks for a boot (BootArtifacts, Initrd, ModulesDisk).
func (s *Service) ModulesDisk(k store.Kernel) (vmm.Disk, proto.GuestDisk, bool) {
	return KernelModules(k)
}
