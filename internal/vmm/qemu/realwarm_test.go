package qemu

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// A template guest runs with its RAM in a shared file, is saved with the
// memory left out (x-ignore-shared: the state is tiny), and quits. Two
// clones are restored from it at the same time, each mapping the file
// privately (copy-on-write): both continue counting from the template's
// tick, and the file is unchanged by them.
func TestWarmClonesRealGuest(t *testing.T) {
	d, kdir := realGuest(t)
	root := t.TempDir()
	initrd := tickerInitramfs(t, kdir)
	disk := func(name string) []vmm.Disk {
		p := filepath.Join(root, name+".raw")
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		return []vmm.Disk{{ID: "work", Path: p}}
	}
	snap := filepath.Join(root, "template")
	os.Mkdir(snap, 0o700)
	memFile := filepath.Join(snap, "mem")
	spec := vmm.Spec{ID: "warmtmpl", Dir: filepath.Join(root, "rt-t"), VCPU: 1, MemoryMiB: 256,
		Kernel: filepath.Join(kdir, "vmlinuz"), Initrd: initrd, Cmdline: "quiet",
		ConsoleLog: filepath.Join(root, "console-t.log"), Disks: disk("t"),
		Memory: vmm.MemorySpec{File: memFile, Shared: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	waitTick(t, spec.ConsoleLog, 3, 90*time.Second)
	s := m.(vmm.Snapshotter)
	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	saved := lastTick(spec.ConsoleLog)
	start := time.Now()
	st, err := s.SaveState(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("template saved at tick %d in %v: %+v", saved, time.Since(start).Round(time.Millisecond), st)
	if st.Bytes > 4<<20 {
		t.Errorf("the state holds the memory (%d bytes): x-ignore-shared did not apply", st.Bytes)
	}
	// The memory file is the snapshot: the template must never run again.
	m.Kill()
	<-m.Done()
	sum := fileSum(t, memFile)

	var clones []vmm.Machine
	var logs []string
	for i := 1; i <= 2; i++ {
		c := spec
		c.ID, c.Dir = fmt.Sprintf("warm%d", i), filepath.Join(root, fmt.Sprintf("rt-%d", i))
		c.ConsoleLog, c.Disks = filepath.Join(root, fmt.Sprintf("console-%d.log", i)), disk(fmt.Sprint(i))
		c.Memory, c.Restore = vmm.MemorySpec{File: memFile}, snap
		start := time.Now()
		r, err := d.Start(ctx, c)
		if err != nil {
			t.Fatalf("clone %d: %v", i, err)
		}
		defer r.Kill()
		if err := r.(vmm.Snapshotter).Resume(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("clone %d restored and resumed in %v", i, time.Since(start).Round(time.Millisecond))
		clones, logs = append(clones, r), append(logs, c.ConsoleLog)
	}
	for i, r := range clones {
		n := waitTick(t, logs[i], saved+5, 60*time.Second)
		b, _ := os.ReadFile(logs[i])
		if strings.Contains(string(b), "snaptest boot") {
			t.Errorf("clone %d booted instead of continuing:\n%s", i+1, b)
		}
		t.Logf("clone %d at tick %d (template saved at %d); PSS %s", i+1, n, saved, pss(r.Handles().PID))
	}
	for _, r := range clones {
		r.Kill()
		<-r.Done()
	}
	if fileSum(t, memFile) != sum {
		t.Error("the clones wrote into the template's memory file (it must be mapped privately)")
	}
	// A clone restored without its memory file is refused up front (QEMU
	// would make a zero-filled one and "restore" into it).
	if err := os.Rename(memFile, memFile+".away"); err != nil {
		t.Fatal(err)
	}
	bad := spec
	bad.Dir, bad.ConsoleLog, bad.Restore, bad.Memory = filepath.Join(root, "rt-bad"), filepath.Join(root, "console-bad.log"), snap, vmm.MemorySpec{}
	if _, err := d.Start(ctx, bad); err == nil || !strings.Contains(err.Error(), "saved without its memory") {
		t.Errorf("restore without the memory file: %v", err)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// pss summarises /proc/PID/smaps_rollup: the proportional set size and
// the part of it that is file-backed (shared with other mappings).
func pss(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k == "Pss" || k == "Pss_Anon" || k == "Pss_File" || k == "Pss_Shmem" || k == "Rss" {
			out = append(out, k+" "+strings.Join(strings.Fields(v), " "))
		}
	}
	return strings.Join(out, ", ")
}
