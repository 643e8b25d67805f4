package vms

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/fake"
)

type noArtifacts struct{}

func (noArtifacts) BootArtifacts(context.Context, string, progress.Reporter) (store.Image, store.Kernel, error) {
	return store.Image{}, store.Kernel{}, fmt.Errorf("none")
}
func (noArtifacts) Initrd(context.Context, store.Kernel, progress.Reporter) (string, error) {
	return "", fmt.Errorf("none")
}
func (noArtifacts) ModulesDisk(store.Kernel) (vmm.Disk, proto.GuestDisk, bool) {
	return vmm.Disk{}, proto.GuestDisk{}, false
}

// snapService is a Service with one running VM "dev" on a fake machine,
// without the daemon: enough for a snapshot, not for a boot.
func snapService(t *testing.T) (*Service, *fake.Machine, store.VM) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.PutImage(ctx, store.Image{Name: "img", Path: "/i", SizeBytes: 1, Source: "t"})
	st.PutKernel(ctx, store.Kernel{Name: "krn", Dir: "/k", Release: "6.1", Source: "t"})
	vm := store.VM{ID: "v1", Name: "dev", Image: "img", Kernel: "krn", VMM: "fake", VCPU: 1, MemoryMiB: 512, State: store.StateRunning}
	if err := st.ReserveVM(ctx, &vm, netip.MustParsePrefix("10.1.0.0/24"), netip.MustParseAddr("10.1.0.1")); err != nil {
		t.Fatal(err)
	}
	noop := func(*client.Client, context.Context, time.Time) error { return nil }
	s := New(Deps{Store: st, Paths: config.Paths{StateDir: t.TempDir(), RuntimeDir: t.TempDir()}, Artifacts: noArtifacts{},
		GuestClock: GuestClock{SetTime: noop, Reseed: func(*client.Client, context.Context, []byte) error { return nil }}})
	for _, d := range s.dir(vm.ID).Disks() {
		os.MkdirAll(filepath.Dir(d), 0o700)
		if err := os.WriteFile(d, []byte("disk "+filepath.Base(d)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := fake.New().Start(ctx, vmm.Spec{ID: vm.ID, Name: vm.Name, VCPU: 1, MemoryMiB: 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Kill() })
	s.setInstance(vm.ID, &instance{m: m})
	return s, m.(*fake.Machine), vm
}

// A disk copy that runs out of space: the VM runs on, nothing is kept.
func TestSnapshotDiskFullKeepsVMRunning(t *testing.T) {
	s, m, vm := snapService(t)
	copies := 0
	s.copyDisk = func(dst, src string) error {
		if copies++; copies == 2 {
			os.WriteFile(dst, []byte("partial"), 0o600)
			os.Remove(dst) // as copyDisk does
			return &os.PathError{Op: "write", Path: dst, Err: syscall.ENOSPC}
		}
		return copyDisk(dst, src)
	}
	_, err := s.SnapshotCreate(context.Background(), api.SnapshotParams{Name: "dev", Snapshot: "a"}, nil)
	if err == nil || !strings.Contains(err.Error(), "no space left writing") || !strings.Contains(err.Error(), "free on that filesystem") ||
		strings.Count(err.Error(), "no space left writing") != 1 {
		t.Fatalf("err = %v", err)
	}
	if m.Paused() {
		t.Error("the VM was left paused")
	}
	if ents, _ := os.ReadDir(s.dir(vm.ID).Snapshots()); len(ents) != 0 {
		t.Errorf("left in snapshots/: %v", ents)
	}
	if rows, _ := s.Store.ListSnapshots(context.Background(), vm.ID); len(rows) != 0 {
		t.Errorf("rows: %+v", rows)
	}
	if got, _ := s.Store.GetVM(context.Background(), "dev"); got.State != store.StateRunning {
		t.Errorf("state %s", got.State)
	}
}

// A restore --force whose disk copy fails leaves the VM running on its
// disks as they were.
func TestRestoreDiskFullLeavesVMAndDisksUnchanged(t *testing.T) {
	s, m, vm := snapService(t)
	ctx := context.Background()
	if _, err := s.SnapshotCreate(ctx, api.SnapshotParams{Name: "dev", Snapshot: "a"}, nil); err != nil {
		t.Fatal(err)
	}
	disks := s.dir(vm.ID).Disks()
	for _, d := range disks {
		os.WriteFile(d, []byte("changed since"), 0o600)
	}
	copies := 0
	s.copyDisk = func(dst, src string) error {
		if copies++; copies == 2 {
			return &os.PathError{Op: "write", Path: dst, Err: syscall.ENOSPC}
		}
		return copyDisk(dst, src)
	}
	_, err := s.SnapshotRestore(ctx, api.SnapshotParams{Name: "dev", Snapshot: "a", Force: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "the VM and its disks are unchanged") {
		t.Fatalf("err = %v", err)
	}
	for _, d := range disks {
		if b, _ := os.ReadFile(d); string(b) != "changed since" {
			t.Errorf("%s is %q", d, b)
		}
		if _, err := os.Stat(d + ".restore"); err == nil {
			t.Errorf("%s.restore left", d)
		}
	}
	if m.Exited() || m.Paused() || s.instance(vm.ID) == nil {
		t.Error("the VM does not run any more")
	}
}

// An operation that waited for the VM's lock decides on the state the VM
// has once it holds it, not on the one it resolved: a stop that queued
// behind a `stop --save` sees "saved" and refuses (rather than treating the
// VM as running).
func TestOperationsReadTheStateUnderTheLock(t *testing.T) {
	s, _, vm := snapService(t)
	ctx := context.Background()
	unlock := s.LockVM(vm.ID)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Stop(ctx, "dev")
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // Stop has resolved "running" and waits
	if err := s.Store.SetVMState(ctx, vm.ID, store.StateSaved, ""); err != nil {
		t.Fatal(err)
	}
	s.setInstance(vm.ID, nil) // as a save leaves it
	unlock()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "is saved") {
		t.Fatalf("stop queued behind a save: %v", err)
	}
}
