package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// machineSpec renders the VM's config drive and initrd and describes the
// machine for the driver.
func (d *Daemon) machineSpec(ctx context.Context, vm store.VM, progress progressFn) (vmm.Spec, error) {
	img, err := d.store.GetImage(ctx, vm.Image)
	if err != nil {
		return vmm.Spec{}, err
	}
	kern, err := d.store.GetKernel(ctx, vm.Kernel)
	if err != nil {
		return vmm.Spec{}, err
	}
	initrd, err := d.ensureInitrd(ctx, kern, progress)
	if err != nil {
		return vmm.Spec{}, err
	}
	dir := d.dir(vm.ID)
	cfgDrive := dir.ConfigDrive()
	disks := []vmm.Disk{
		{ID: "base", Path: img.Path, ReadOnly: true},
		{ID: "overlay", Path: dir.Overlay()},
		{ID: "work", Path: dir.Work()},
		{ID: "config", Path: cfgDrive, ReadOnly: true},
	}
	var extra []proto.GuestDisk
	if disk, gd, ok := kernelModules(kern); ok {
		disks = append(disks, disk)
		extra = append(extra, gd)
	}
	if err := d.writeConfigDrive(vm, cfgDrive, extra); err != nil {
		return vmm.Spec{}, err
	}
	rt := dir.Runtime()
	if err := os.MkdirAll(rt, 0o700); err != nil {
		return vmm.Spec{}, err
	}
	return vmm.Spec{
		ID: vm.ID, Name: vm.Name, Dir: rt, VCPU: vm.VCPU, MemoryMiB: vm.MemoryMiB,
		Kernel:     filepath.Join(kern.Dir, "vmlinuz"),
		KernelELF:  filepath.Join(kern.Dir, "vmlinux"),
		Initrd:     initrd,
		Cmdline:    "quiet",
		Disks:      disks,
		Net:        &vmm.NetIface{TAP: tapName(vm.ID), MAC: vm.MAC},
		ConsoleLog: dir.ConsoleLog(),
	}, nil
}

// writeConfigDrive renders the per-VM configuration the agent applies at
// every boot; extra lists disks beyond the VM's own (the kernel's modules).
func (d *Daemon) writeConfigDrive(vm store.VM, path string, extra []proto.GuestDisk) error {
	_, authorized, err := d.keys.EnsureUserKey()
	if err != nil {
		return err
	}
	dir := d.dir(vm.ID)
	priv, err := os.ReadFile(dir.HostKey())
	if err != nil {
		return err
	}
	pub, err := os.ReadFile(dir.HostKeyPub())
	if err != nil {
		return err
	}
	cfg := proto.GuestConfig{
		Version:  proto.ConfigVersion,
		Hostname: vm.Name,
		Disks: append([]proto.GuestDisk{
			{Role: proto.RoleBase},
			{Role: proto.RoleOverlay, UUID: vm.OverlayUUID},
			{Role: proto.RoleWork, UUID: vm.WorkUUID},
		}, extra...),
		Net: &proto.GuestNet{
			MAC:     vm.MAC,
			Address: fmt.Sprintf("%s/%d", vm.IP, d.net.Subnet().Bits()),
			Gateway: d.net.Gateway().String(),
			DNS:     []string{d.net.Gateway().String()},
		},
		AuthorizedKeys: []string{authorized},
		SSHHostKeys: map[string]string{
			"ssh_host_ed25519_key":     string(priv),
			"ssh_host_ed25519_key.pub": string(pub),
		},
		// Images recorded without an init keep the agent as PID 1.
		Init: d.guestInit(vm.Image),
	}
	b, err := proto.EncodeConfigDrive(cfg)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
