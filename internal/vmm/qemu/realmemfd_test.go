package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// A fork's instant with a real guest whose RAM is a memfd (a boot):
// the paused parent is saved without its memory and its memory copied
// into a file (SaveStateWithMemory), the parent resumes and keeps
// counting, and a child restored from the state with the file mapped
// privately continues from the saved tick. Timed with the file on the
// test's disk and on /dev/shm (tmpfs).
func TestForkMemfdRealGuest(t *testing.T) {
	d, kdir := realGuest(t)
	root := t.TempDir()
	initrd := tickerInitramfs(t, kdir)
	disk := filepath.Join(root, "work.raw")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := vmm.Spec{ID: "memfdparent", Dir: filepath.Join(root, "rt-p"), VCPU: 1, MemoryMiB: 1024,
		Kernel: filepath.Join(kdir, "vmlinuz"), Initrd: initrd, Cmdline: "quiet",
		ConsoleLog: filepath.Join(root, "console-p.log"), Disks: []vmm.Disk{{ID: "work", Path: disk}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	ms := m.(vmm.MemorySaver)
	if !ms.SharesMemory() {
		t.Fatal("a booted machine's RAM is not a memfd")
	}
	if at, err := d.Attach(m.Handles()); err != nil || !at.(vmm.MemorySaver).SharesMemory() {
		t.Fatalf("an attached machine does not find its memfd (%v)", err)
	}
	waitTick(t, spec.ConsoleLog, 3, 90*time.Second)
	shm, err := os.MkdirTemp("/dev/shm", "banger-memfdtest")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shm)
	sn := m.(vmm.Snapshotter)
	for _, where := range []struct{ name, dir string }{{"disk", root}, {"tmpfs", shm}} {
		point := filepath.Join(root, "point-"+where.name)
		os.Mkdir(point, 0o700)
		mem := filepath.Join(where.dir, "mem-"+where.name)
		if err := sn.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		saved := lastTick(spec.ConsoleLog)
		start := time.Now()
		st, err := ms.SaveStateWithMemory(ctx, point, mem)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if err := sn.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		var fst os.FileInfo
		if fst, err = os.Stat(filepath.Join(point, StateFile)); err != nil || fst.Size() > 4<<20 {
			t.Fatalf("%s: the state holds the memory (%v, %v)", where.name, fst, err)
		}
		fi, err := os.Stat(mem)
		if err != nil || fi.Size() != 1024<<20 {
			t.Fatalf("%s: memory file %v, %v", where.name, fi, err)
		}
		t.Logf("%s: state saved and %d MiB of memory copied in %v (paused)", where.name, (st.Bytes-fst.Size())>>20, took.Round(time.Millisecond))
		waitTick(t, spec.ConsoleLog, saved+2, 60*time.Second) // the parent runs on

		c := spec
		c.ID, c.Dir, c.ConsoleLog = "memfdchild-"+where.name, filepath.Join(root, "rt-c-"+where.name), filepath.Join(root, "console-c-"+where.name)
		c.Restore, c.Memory = point, vmm.MemorySpec{File: mem}
		c.Disks = []vmm.Disk{{ID: "work", Path: filepath.Join(root, "work-"+where.name)}}
		if err := os.WriteFile(c.Disks[0].Path, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		cm, err := d.Start(ctx, c)
		if err != nil {
			t.Fatalf("%s: child: %v", where.name, err)
		}
		if cm.(vmm.MemorySaver).SharesMemory() {
			t.Errorf("%s: a restored child's RAM is a memfd", where.name)
		}
		if err := cm.(vmm.Snapshotter).Resume(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: child restored and resumed in %v", where.name, time.Since(start).Round(time.Millisecond))
		n := waitTick(t, c.ConsoleLog, saved+3, 60*time.Second)
		if b, _ := os.ReadFile(c.ConsoleLog); strings.Contains(string(b), "snaptest boot") {
			t.Errorf("%s: the child booted instead of continuing", where.name)
		}
		t.Logf("%s: child at tick %d (parent saved at %d); PSS child %s, parent %s", where.name, n, saved, pss(cm.Handles().PID), pss(m.Handles().PID))
		cm.Kill()
		<-cm.Done()
	}
}
