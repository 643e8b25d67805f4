package daemon

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// modulesDiskID is the module disk's drive id (vmm.Disk: [A-Za-z0-9_]).
const modulesDiskID = "modules"

// kernelModules returns the kernel's module disk and its UUID, or ok=false
// when it has none (catalog bundles, loose files, imports from before
// module disks): such a VM boots as before, without /lib/modules.
func kernelModules(k store.Kernel) (disk vmm.Disk, gd proto.GuestDisk, ok bool) {
	info, err := kernel.Load(k.Dir)
	if err != nil || !kernel.HasModulesDisk(k.Dir, info) {
		return vmm.Disk{}, proto.GuestDisk{}, false
	}
	return vmm.Disk{ID: modulesDiskID, Path: filepath.Join(k.Dir, kernel.ModulesDiskFile), ReadOnly: true},
		proto.GuestDisk{Role: proto.RoleModules, UUID: info.ModulesUUID}, true
}

// upgradeKernelModules adds a module disk to a registered Debian import
// made before they existed, so users' kernels gain modprobe without a
// re-import. It is tried once per kernel directory and daemon; a failure
// (offline host, package gone from the archive) is a warning, never a
// failed boot: the kernel works without the disk.
func (d *Daemon) upgradeKernelModules(ctx context.Context, k store.Kernel, progress progressFn) {
	// Only the import cache: catalog and loose-file kernels have no
	// package to fetch, and a .deb import's file may be gone.
	if filepath.Dir(k.Dir) != filepath.Join(d.paths.CacheDir, "kernels") || strings.HasPrefix(k.Source, "deb-") {
		return
	}
	info, err := kernel.Load(k.Dir)
	if err != nil || info.Package == "" || kernel.HasModulesDisk(k.Dir, info) {
		return
	}
	if _, tried := d.modulesTried.LoadOrStore(k.Dir, true); tried {
		return
	}
	d.provisionMu.Lock()
	defer d.provisionMu.Unlock()
	progress("kernel", "kernel "+k.Name+" has no "+kernel.ModulesDiskFile+" (modprobe in the guest): adding it")
	_, err = kernel.AddModulesDisk(ctx, kernel.ImportOptions{Dir: k.Dir, Package: info.Package,
		Progress: func(m string) { progress("kernel", m) }})
	if err != nil {
		d.log.Warn("add module disk", "kernel", k.Name, "err", err)
		progress("kernel", "warning: "+err.Error()+"; booting without /lib/modules")
	}
}
