package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// fakeDevScan scans dev, a directory standing in for /dev, for disks.
func fakeDevScan(dev string) *diskScan {
	return &diskScan{devDir: dev, probed: map[string]probedDisk{}, list: func() []string {
		entries, _ := os.ReadDir(dev)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}}
}

// TestDiskScanWaitsForDisks plays disks appearing one by one in a fake
// /dev and checks the scan only succeeds once every role is matched.
func TestDiskScanWaitsForDisks(t *testing.T) {
	dev := t.TempDir()
	const ov = "0b5e7c1a-9f7e-4a53-9d51-0f6c0a3b9d11"
	scan := fakeDevScan(dev)
	mkfsExt4(t, filepath.Join(dev, "vda"), "aaaaaaaa-1111-2222-3333-444444444444")
	if _, err := scan.step(); err == nil || !strings.Contains(err.Error(), "no banger config drive") {
		t.Fatalf("err = %v", err)
	}
	drive, err := proto.EncodeConfigDrive(proto.GuestConfig{
		Version: proto.ConfigVersion, Hostname: "vm1",
		Disks: []proto.GuestDisk{{Role: proto.RoleBase}, {Role: proto.RoleOverlay, UUID: ov}},
	})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dev, "vdc"), drive, 0o644)
	if _, err := scan.step(); err == nil || !strings.Contains(err.Error(), "role overlay") {
		t.Fatalf("err = %v", err)
	}
	mkfsExt4(t, filepath.Join(dev, "vdb"), ov)
	roles, err := scan.step()
	if err != nil {
		t.Fatal(err)
	}
	if roles["base"] != filepath.Join(dev, "vda") || roles["overlay"] != filepath.Join(dev, "vdb") {
		t.Fatalf("roles %v", roles)
	}
	if scan.cfg.Hostname != "vm1" {
		t.Fatalf("config %+v", scan.cfg)
	}
	if got := scan.summary(); got != "vda=ext4:aaaaaaaa-1111-2222-3333-444444444444 vdb=ext4:"+ov+" vdc=config" {
		t.Fatalf("summary %q", got)
	}
}

func TestCorruptConfigDriveIsFatal(t *testing.T) {
	dev := t.TempDir()
	os.WriteFile(filepath.Join(dev, "vda"), []byte("BANGER-CONFIG-V1\n999\n{"), 0o644)
	scan := &diskScan{devDir: dev, list: func() []string { return []string{"vda"} }, probed: map[string]probedDisk{}}
	_, err := scan.step()
	var fatal fatalDiskError
	if err == nil || !strings.Contains(err.Error(), "config drive vda") || !errors.As(err, &fatal) {
		t.Fatalf("err = %v", err)
	}
}

// TestDiskScanFindsModulesDisk: a config naming the kernel's module disk
// waits for it, then matches it by UUID and leaves the base image alone.
func TestDiskScanFindsModulesDisk(t *testing.T) {
	dev := t.TempDir()
	const mods = "6a1f4e2d-3c5b-4a79-8e1d-2f3a4b5c6d7e"
	scan := fakeDevScan(dev)
	mkfsExt4(t, filepath.Join(dev, "vda"), "aaaaaaaa-1111-2222-3333-444444444444")
	drive, err := proto.EncodeConfigDrive(proto.GuestConfig{Version: proto.ConfigVersion,
		Disks: []proto.GuestDisk{{Role: proto.RoleBase}, {Role: proto.RoleModules, UUID: mods}}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dev, "vdb"), drive, 0o644)
	if _, err := scan.step(); err == nil || !strings.Contains(err.Error(), "role modules") {
		t.Fatalf("err = %v", err)
	}
	mkfsExt4(t, filepath.Join(dev, "vde"), mods)
	roles, err := scan.step()
	if err != nil {
		t.Fatal(err)
	}
	if roles[proto.RoleBase] != filepath.Join(dev, "vda") || roles[proto.RoleModules] != filepath.Join(dev, "vde") {
		t.Fatalf("roles %v", roles)
	}
}
