package fakefc_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/vmm/firecracker"
)

func TestFakeSnapshotRules(t *testing.T) {
	c, _, dir := serve(t, "--fake-stay-after-failed-load")
	ctx := context.Background()
	snap := firecracker.SnapshotCreateParams{SnapshotPath: filepath.Join(dir, "vmstate"), MemFilePath: filepath.Join(dir, "mem")}
	wantFault(t, c.PatchVM(ctx, firecracker.VMStatePaused), "before starting")
	wantFault(t, c.CreateSnapshot(ctx, snap), "before starting")
	wantFault(t, c.PatchVM(ctx, "Stopped"), "unknown variant")
	load := firecracker.SnapshotLoadParams{SnapshotPath: snap.SnapshotPath}
	wantFault(t, c.LoadSnapshot(ctx, load), "Either mem_backend or mem_file_path")
	load.MemBackend = &firecracker.MemoryBackend{BackendType: "File", BackendPath: snap.MemFilePath}
	wantFault(t, c.LoadSnapshot(ctx, firecracker.SnapshotLoadParams{SnapshotPath: "/s", MemBackend: load.MemBackend,
		VsockOverride: &firecracker.VsockOverride{UDSPath: "/v"}}), "cannot open snapshot file") // 1.16.1 knows the field
	// A failed load here did not exit (--fake-stay-after-failed-load).

	if err := c.PutMachineConfig(ctx, firecracker.MachineConfig{VCPUCount: 1, MemSizeMiB: 64}); err != nil {
		t.Fatal(err)
	}
	wantFault(t, c.LoadSnapshot(ctx, load), "after configuring boot-specific resources")
	if err := c.PutBootSource(ctx, firecracker.BootSource{KernelImagePath: file(t, dir, "k", "\x7fELF")}); err != nil {
		t.Fatal(err)
	}
	vsock := filepath.Join(dir, "v.sock")
	if err := c.PutVsock(ctx, firecracker.Vsock{GuestCID: 3, UDSPath: vsock}); err != nil {
		t.Fatal(err)
	}
	if err := c.Action(ctx, firecracker.ActionInstanceStart); err != nil {
		t.Fatal(err)
	}
	wantFault(t, c.CreateSnapshot(ctx, snap), "not paused")
	if err := c.PatchVM(ctx, firecracker.VMStatePaused); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.Info(ctx); info.State != "Paused" {
		t.Fatalf("state %q", info.State)
	}
	if got := connect(t, vsock); got != "" {
		t.Fatalf("a paused guest answered CONNECT: %q", got)
	}
	if err := c.CreateSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if err := c.PatchVM(ctx, firecracker.VMStateResumed); err != nil {
		t.Fatal(err)
	}
	if got := connect(t, vsock); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("CONNECT after resume: %q", got)
	}

	// A fresh process loads it, paused, with its vsock back.
	c2, console, _ := serve(t)
	load.VsockOverride = &firecracker.VsockOverride{UDSPath: filepath.Join(dir, "v2.sock")}
	if err := c2.LoadSnapshot(ctx, load); err != nil {
		t.Fatal(err)
	}
	if info, _ := c2.Info(ctx); info.State != "Paused" {
		t.Fatalf("restored state %q", info.State)
	}
	if err := c2.PatchVM(ctx, firecracker.VMStateResumed); err != nil {
		t.Fatal(err)
	}
	if got := connect(t, load.VsockOverride.UDSPath); !strings.HasPrefix(got, "OK ") {
		t.Fatalf("CONNECT after restore: %q", got)
	}
	if !strings.Contains(console.String(), "restored from") {
		t.Errorf("console %q", console.String())
	}
}
