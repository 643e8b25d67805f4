package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/rpc"
)

func init() {
	handlerSets = append(handlerSets, func(d *Daemon) map[string]rpc.Handler {
		return map[string]rpc.Handler{
			api.MethodVMRestart: d.handleRestart,
			api.MethodVMSet:     d.handleSet,
			api.MethodVMStats:   d.handleStats,
			api.MethodVMPorts:   d.handlePorts,
		}
	})
}

// handleRestart stops (gracefully) and boots a VM under one lock, so no
// other operation on it can slip in between.
func (d *Daemon) handleRestart(ctx context.Context, c *rpc.Call) (any, error) {
	vm, err := d.lookup(ctx, c)
	if err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	lock := d.vmLock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	if d.instance(vm.ID) != nil {
		c.Progress("stop", "shutting down "+vm.Name)
		if err := d.stopVM(ctx, vm); err != nil {
			return nil, err
		}
	}
	if err := d.bootVM(ctx, &vm, true, c.Progress); err != nil {
		return nil, err
	}
	return d.view(vm), nil
}

// handleSet resizes a stopped VM. Disks only grow: shrinking a filesystem
// that holds the user's data is refused rather than risked.
func (d *Daemon) handleSet(ctx context.Context, c *rpc.Call) (any, error) {
	var p api.SetParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	vm, err := d.resolveName(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	lock := d.vmLock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	if d.instance(vm.ID) != nil {
		return nil, conflict("vm %s is running: stop it first (`banger vm stop %s`), then set its size", vm.Name, vm.Name)
	}
	spec := config.Spec{VCPU: vm.VCPU, MemoryMiB: vm.MemoryMiB, DiskBytes: vm.DiskBytes}
	if p.VCPU != 0 {
		spec.VCPU = p.VCPU
	}
	if p.MemoryMiB != 0 {
		spec.MemoryMiB = p.MemoryMiB
	}
	if p.DiskSize != "" {
		n, err := config.ParseSize(p.DiskSize)
		if err != nil {
			return nil, invalid("--disk-size: %v", err)
		}
		if n < vm.DiskBytes {
			return nil, invalid("--disk-size %s is smaller than the current %s: disks can only grow",
				config.FormatSize(n), config.FormatSize(vm.DiskBytes))
		}
		spec.DiskBytes = n
	}
	if err := spec.Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	if spec.DiskBytes > vm.DiskBytes {
		c.Progress("disks", "growing overlay and work disks to "+config.FormatSize(spec.DiskBytes)+" (the guest grows their filesystems at its next boot)")
		for _, disk := range d.dir(vm.ID).Disks() {
			if err := growDisk(disk, spec.DiskBytes); err != nil {
				return nil, err
			}
		}
	}
	if err := d.store.SetVMSize(ctx, vm.ID, spec.VCPU, spec.MemoryMiB, spec.DiskBytes); err != nil {
		return nil, err
	}
	vm, err = d.store.GetVM(ctx, vm.ID)
	return d.view(vm), err
}

// growDisk extends a sparse disk file; nothing else. The filesystem on it
// was written by the guest, so the host never parses it (no e2fsck or
// resize2fs here): the guest agent grows it online at the next boot
// (agent/growfs_linux.go, EXT4_IOC_RESIZE_FS).
func growDisk(path string, size int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("grow %s: %w", filepath.Base(path), err)
	}
	if fi.Size() >= size {
		return nil
	}
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("grow %s: %w", filepath.Base(path), err)
	}
	return nil
}
