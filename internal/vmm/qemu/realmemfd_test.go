package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/vmm"
)

// A fork's instant with a real guest whose RAM is a memfd (a boot):
// the paused parent is saved without its memory and its memory copied
// into a file (SaveStateWithMemory), the parent resumes and keeps
// counting, and a child restored from the state with the file mapped
// privately continues from the saved tick. Timed with the memory in a
// file on the test's disk and in a memfd (what vm fork uses).
func TestForkMemfdRealGuest(t *testing.T) {
	d, kdir := realGuest(t)
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spec, m := bootTicker(ctx, t, d, kdir, root, "memfdparent")
	var err error
	ms := m.(vmm.MemorySaver)
	if !ms.SharesMemory() {
		t.Fatal("a booted machine's RAM is not a memfd")
	}
	if at, err := d.Attach(m.Handles()); err != nil || !at.(vmm.MemorySaver).SharesMemory() {
		t.Fatalf("an attached machine does not find its memfd (%v)", err)
	}
	sn := m.(vmm.Snapshotter)
	for _, where := range []string{"memfd", "disk"} {
		point := filepath.Join(root, "point-"+where)
		os.Mkdir(point, 0o700)
		var memf *os.File
		if where == "disk" {
			memf, err = os.Create(filepath.Join(root, "mem"))
		} else {
			var fd int
			fd, err = unix.MemfdCreate("banger-test", unix.MFD_CLOEXEC)
			memf = os.NewFile(uintptr(fd), "memfd")
		}
		if err != nil {
			t.Fatal(err)
		}
		defer memf.Close()
		mem := fmt.Sprintf("/proc/self/fd/%d", memf.Fd())
		if err := sn.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		saved := lastTick(spec.ConsoleLog)
		start := time.Now()
		st, err := ms.SaveStateWithMemory(ctx, point, memf)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if err := sn.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		var fst os.FileInfo
		if fst, err = os.Stat(filepath.Join(point, StateFile)); err != nil || fst.Size() > 4<<20 {
			t.Fatalf("%s: the state holds the memory (%v, %v)", where, fst, err)
		}
		fi, err := os.Stat(mem)
		if err != nil || fi.Size() != 1024<<20 {
			t.Fatalf("%s: memory file %v, %v", where, fi, err)
		}
		t.Logf("%s: state saved and %d MiB of memory copied in %v (paused)", where, (st.Bytes-fst.Size())>>20, took.Round(time.Millisecond))
		waitTick(t, spec.ConsoleLog, saved+2, 60*time.Second) // the parent runs on

		c := spec
		c.ID, c.Dir, c.ConsoleLog = "memfdchild-"+where, filepath.Join(root, "rt-c-"+where), filepath.Join(root, "console-c-"+where)
		c.Restore, c.Memory = point, vmm.MemorySpec{File: mem}
		c.Disks = []vmm.Disk{{ID: "work", Path: filepath.Join(root, "work-"+where)}}
		if err := os.WriteFile(c.Disks[0].Path, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		cm, err := d.Start(ctx, c)
		if err != nil {
			t.Fatalf("%s: child: %v", where, err)
		}
		if cm.(vmm.MemorySaver).SharesMemory() {
			t.Errorf("%s: a restored child's RAM is a memfd", where)
		}
		if err := cm.(vmm.Snapshotter).Resume(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: child restored and resumed in %v", where, time.Since(start).Round(time.Millisecond))
		n := waitTick(t, c.ConsoleLog, saved+3, 60*time.Second)
		if b, _ := os.ReadFile(c.ConsoleLog); strings.Contains(string(b), "snaptest boot") {
			t.Errorf("%s: the child booted instead of continuing", where)
		}
		t.Logf("%s: child at tick %d (parent saved at %d); PSS child %s, parent %s", where, n, saved, pss(cm.Handles().PID), pss(m.Handles().PID))
		cm.Kill()
		<-cm.Done()
	}
}

// bootTicker boots a 1 GiB, 1-vCPU guest running the ticker initramfs
// with a 1 MiB work disk in root, killed at the test's end, and waits
// for its third tick.
func bootTicker(ctx context.Context, t *testing.T, d *Driver, kdir, root, id string) (vmm.Spec, vmm.Machine) {
	t.Helper()
	disk := filepath.Join(root, "work.raw")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := vmm.Spec{ID: id, Dir: filepath.Join(root, "rt-"+id), VCPU: 1, MemoryMiB: 1024,
		Kernel: filepath.Join(kdir, "vmlinuz"), Initrd: tickerInitramfs(t, kdir), Cmdline: "quiet",
		ConsoleLog: filepath.Join(root, "console-"+id+".log"), Disks: []vmm.Disk{{ID: "work", Path: disk}}}
	m, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Kill() })
	waitTick(t, spec.ConsoleLog, 3, 90*time.Second)
	return spec, m
}
