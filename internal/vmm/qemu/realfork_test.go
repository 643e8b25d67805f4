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

// A fork's template (vms/forkshare.go) with a real guest: a guest is
// saved with its memory in the stream; a second QEMU
// restores that state into a new shared memory file and is saved again
// without its memory (x-ignore-shared); a clone maps the file privately
// and continues counting from the saved tick. The template's load is
// timed with the file on the test's disk and on /dev/shm (tmpfs), and
// against a restore of the same state into anonymous RAM.
func TestForkTemplateRealGuest(t *testing.T) {
	d, kdir := realGuest(t)
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spec, m := bootTicker(ctx, t, d, kdir, root, "forkparent") // realmemfd_test.go
	if err := m.(vmm.Snapshotter).Pause(ctx); err != nil {
		t.Fatal(err)
	}
	saved := lastTick(spec.ConsoleLog)
	point := filepath.Join(root, "point")
	os.Mkdir(point, 0o700)
	if _, err := m.(vmm.Snapshotter).SaveState(ctx, point); err != nil {
		t.Fatal(err)
	}
	m.Kill()
	<-m.Done()

	// the same state restored into anonymous RAM, for comparison
	plain := spec
	plain.ID, plain.Dir, plain.ConsoleLog, plain.Restore = "forkplain", filepath.Join(root, "rt-plain"), filepath.Join(root, "console-plain"), point
	start := time.Now()
	pm, err := d.Start(ctx, plain)
	if err != nil {
		t.Fatalf("plain restore: %v", err)
	}
	t.Logf("anonymous RAM: started and loaded in %v", time.Since(start).Round(time.Millisecond))
	pm.Kill()
	<-pm.Done()

	shm, err := os.MkdirTemp("/dev/shm", "banger-forktest")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shm)
	for _, where := range []struct{ name, dir string }{{"disk", root}, {"tmpfs", shm}} {
		mem := filepath.Join(where.dir, "mem-"+where.name)
		tmpl := spec
		tmpl.ID, tmpl.Dir, tmpl.ConsoleLog = "forktmpl-"+where.name, filepath.Join(root, "rt-t-"+where.name), filepath.Join(root, "console-t-"+where.name)
		tmpl.Restore, tmpl.Memory = point, vmm.MemorySpec{File: mem, Shared: true}
		start = time.Now()
		tm, err := d.Start(ctx, tmpl)
		if err != nil {
			t.Fatalf("%s: template restore into a shared file: %v", where.name, err)
		}
		loaded := time.Since(start)
		shared := filepath.Join(root, "shared-"+where.name)
		os.Mkdir(shared, 0o700)
		start = time.Now()
		st, err := tm.(vmm.Snapshotter).SaveState(ctx, shared)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: template started and loaded in %v, saved without its memory in %v (%d bytes)", where.name,
			loaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), st.Bytes)
		if st.Bytes > 4<<20 {
			t.Errorf("%s: the template's state holds the memory (%d bytes)", where.name, st.Bytes)
		}
		tm.Kill()
		<-tm.Done()
		c := spec
		c.ID, c.Dir, c.ConsoleLog = "forkchild-"+where.name, filepath.Join(root, "rt-c-"+where.name), filepath.Join(root, "console-c-"+where.name)
		c.Restore, c.Memory = shared, vmm.MemorySpec{File: mem}
		start = time.Now()
		cm, err := d.Start(ctx, c)
		if err != nil {
			t.Fatalf("%s: child: %v", where.name, err)
		}
		if err := cm.(vmm.Snapshotter).Resume(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: child restored and resumed in %v", where.name, time.Since(start).Round(time.Millisecond))
		n := waitTick(t, c.ConsoleLog, saved+3, 60*time.Second)
		if b, _ := os.ReadFile(c.ConsoleLog); strings.Contains(string(b), "snaptest boot") {
			t.Errorf("%s: the child booted instead of continuing", where.name)
		}
		t.Logf("%s: child at tick %d (parent saved at %d); PSS %s", where.name, n, saved, pss(cm.Handles().PID))
		cm.Kill()
		<-cm.Done()
	}
}
