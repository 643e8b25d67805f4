package vms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// BootPlan is what a boot needs from the artifacts: the image and kernel
// rows, resolved once — by create (which may have pulled them) or, for a
// start, from the VM's recorded names — and used by every step after.
type BootPlan struct {
	Image  store.Image
	Kernel store.Kernel
}

// planFor resolves the boot plan of an existing VM.
func (s *Service) planFor(ctx context.Context, vm store.VM) (BootPlan, error) {
	img, err := s.Store.GetImage(ctx, vm.Image)
	if err != nil {
		return BootPlan{}, fmt.Errorf("image %s of vm %s: %w", vm.Image, vm.Name, err)
	}
	kern, err := s.Store.GetKernel(ctx, vm.Kernel)
	if err != nil {
		return BootPlan{}, fmt.Errorf("kernel %s of vm %s: %w", vm.Kernel, vm.Name, err)
	}
	return BootPlan{Image: img, Kernel: kern}, nil
}

// noInitPath is GuestConfig.Init for an image recorded as having no init:
// a path the agent's own /run tmpfs never holds, so the agent finds
// nothing to hand over to and stays PID 1 (proto.GuestConfig.Init).
const noInitPath = "/run/banger/no-init"

// guestInit is the GuestConfig.Init for a VM of the plan's image.
func (p BootPlan) guestInit() string {
	if p.Image.Init == store.InitNone {
		return noInitPath
	}
	return p.Image.Init
}

// machineSpec renders the VM's config drive and initrd and describes the
// machine for the driver.
func (s *Service) machineSpec(ctx context.Context, vm store.VM, plan BootPlan, r progress.Reporter) (vmm.Spec, error) {
	kern := plan.Kernel
	initrd, err := s.Artifacts.Initrd(ctx, kern, r)
	if err != nil {
		return vmm.Spec{}, err
	}
	dir := s.dir(vm.ID)
	cfgDrive := dir.ConfigDrive()
	disks, extra := s.diskSet(vm, plan)
	if err := s.writeConfigDrive(vm, plan, cfgDrive, extra); err != nil {
		return vmm.Spec{}, err
	}
	rt := dir.Runtime()
	if err := os.MkdirAll(rt, 0o700); err != nil {
		return vmm.Spec{}, err
	}
	return specOf(vm, kern, initrd, disks, rt, dir.ConsoleLog()), nil
}

// specOf is the machine of vm with these disks, runtime dir and console
// (a fork's template machine has the fork point's disks: forkshare.go).
func specOf(vm store.VM, kern store.Kernel, initrd string, disks []vmm.Disk, rt, console string) vmm.Spec {
	return vmm.Spec{
		ID: vm.ID, Name: vm.Name, Dir: rt, VCPU: vm.VCPU, MemoryMiB: vm.MemoryMiB,
		Kernel:     filepath.Join(kern.Dir, "vmlinuz"),
		KernelELF:  filepath.Join(kern.Dir, "vmlinux"),
		Initrd:     initrd,
		Cmdline:    "quiet",
		Disks:      disks,
		Net:        &vmm.NetIface{TAP: TAPName(vm.ID), MAC: vm.MAC},
		ConsoleLog: console,
	}
}

// diskSet is the VM's disks in the order the VMM gets them (a saved
// state's layout depends on it: see machineLayout) and the guest's view
// of those beyond its own.
func (s *Service) diskSet(vm store.VM, plan BootPlan) ([]vmm.Disk, []proto.GuestDisk) {
	dir := s.dir(vm.ID)
	disks := []vmm.Disk{
		{ID: "base", Path: plan.Image.Path, ReadOnly: true},
		{ID: "overlay", Path: dir.Overlay()},
		{ID: "work", Path: dir.Work()},
		{ID: "config", Path: dir.ConfigDrive(), ReadOnly: true},
	}
	var extra []proto.GuestDisk
	if disk, gd, ok := s.Artifacts.ModulesDisk(plan.Kernel); ok {
		disks = append(disks, disk)
		extra = append(extra, gd)
	}
	return disks, extra
}

// writeConfigDrive renders the per-VM configuration the agent applies at
// every boot; extra lists disks beyond the VM's own (the kernel's modules).
func (s *Service) writeConfigDrive(vm store.VM, plan BootPlan, path string, extra []proto.GuestDisk) error {
	dir := s.dir(vm.ID)
	priv, err := os.ReadFile(dir.HostKey())
	if err != nil {
		return err
	}
	pub, err := os.ReadFile(dir.HostKeyPub())
	if err != nil {
		return err
	}
	cfg, err := s.guestConfig(vm.Name, vm.OverlayUUID, vm.WorkUUID, s.guestNet(vm), priv, pub, plan, extra)
	if err != nil {
		return err
	}
	return writeConfig(path, cfg)
}

// guestConfig is what a config drive tells the agent: a VM's, or a
// warm-start template's (warmcapture.go: no address, a throwaway host
// key).
func (s *Service) guestConfig(hostname, overlayUUID, workUUID string, net *proto.GuestNet, priv, pub []byte, plan BootPlan, extra []proto.GuestDisk) (proto.GuestConfig, error) {
	_, authorized, err := s.Keys.EnsureUserKey()
	if err != nil {
		return proto.GuestConfig{}, err
	}
	return proto.GuestConfig{
		Version:  proto.ConfigVersion,
		Hostname: hostname,
		Disks: append([]proto.GuestDisk{
			{Role: proto.RoleBase},
			{Role: proto.RoleOverlay, UUID: overlayUUID},
			{Role: proto.RoleWork, UUID: workUUID},
		}, extra...),
		Net:            net,
		AuthorizedKeys: []string{authorized},
		SSHHostKeys: map[string]string{
			"ssh_host_ed25519_key":     string(priv),
			"ssh_host_ed25519_key.pub": string(pub),
		},
		// Images recorded without an init keep the agent as PID 1.
		Init: plan.guestInit(),
	}, nil
}

// writeConfig writes a config drive atomically.
func writeConfig(path string, cfg proto.GuestConfig) error {
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

// guestNet is the VM's network configuration as the agent applies it.
func (s *Service) guestNet(vm store.VM) *proto.GuestNet {
	return &proto.GuestNet{
		MAC:     vm.MAC,
		Address: fmt.Sprintf("%s/%d", vm.IP, s.Net.Subnet().Bits()),
		Gateway: s.Net.Gateway().String(),
		DNS:     []string{s.Net.Gateway().String()},
	}
}
