package qemu

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/vmm"
)

// argAfter returns the value following flag in args.
func argAfter(t *testing.T, args []string, flag string) string {
	t.Helper()
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("%s missing from %q", flag, args)
	}
	return args[i+1]
}

// A real QEMU started with the driver's marker and pidfile, holding an
// inherited flock on its writable disk (as Start passes Spec.Inherit): it
// is found by its argv and its pidfile, the lock stays held after the
// starter closes its copy, a second start on the disk is refused naming
// it — by banger's lock and, independently, by QEMU's own image locking —
// and once it is killed the disk is free.
func TestStrayQEMUFoundByMarkerAndHoldsDiskLock(t *testing.T) {
	d := New(Options{})
	if err := d.Available(); err != nil {
		t.Fatalf("this test needs QEMU (make setup installs it): %v", err)
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "work.ext4")
	must(t, os.WriteFile(disk, make([]byte, 1<<20), 0o600))
	spec := vmm.Spec{ID: "5717a7e57001", Name: "stray", Dir: dir, Disks: []vmm.Disk{{ID: "work", Path: disk}}}
	args := d.Args(spec)
	marker, pidfile := argAfter(t, args, "-name"), argAfter(t, args, "-pidfile")
	if marker != vmm.Marker(spec.ID) || pidfile != filepath.Join(dir, PIDFile) {
		t.Fatalf("marker %q pidfile %q", marker, pidfile)
	}
	locks, err := vmm.LockDisks(spec.Disks)
	must(t, err)
	drive := "id=work,file=" + disk + ",format=raw,if=none,cache=unsafe,aio=threads"
	qemuArgs := []string{"-name", marker, "-pidfile", pidfile, "-M", "microvm", "-nodefaults", "-no-user-config",
		"-display", "none", "-accel", "tcg", "-m", "64M", "-drive", drive, "-device", "virtio-blk-device,drive=work"}
	cmd := exec.Command(d.bin, qemuArgs...)
	cmd.ExtraFiles = locks
	must(t, cmd.Start())
	vmm.CloseAll(locks)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	pid := cmd.Process.Pid

	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(pidfile)
		if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU wrote no pidfile: %v %q", err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := vmm.FindMarked(marker); !slices.Equal(got, []int{pid}) || !vmm.HasMarker(pid, marker) {
		t.Fatalf("FindMarked = %v, want [%d]", got, pid)
	}
	_, err = vmm.LockDisks(spec.Disks)
	if err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(pid)+" (qemu-system-x86") {
		t.Fatalf("second lock: %v", err)
	}
	// QEMU 7.2 takes its own OFD locks on raw images (locking=auto): a
	// second QEMU on the same disk refuses too.
	out, err := exec.Command(d.bin, "-M", "microvm", "-nodefaults", "-no-user-config", "-display", "none",
		"-accel", "tcg", "-m", "64M", "-drive", drive, "-device", "virtio-blk-device,drive=work").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `Failed to get "write" lock`) {
		t.Fatalf("second QEMU on the disk: %v\n%s", err, out)
	}

	must(t, vmm.KillMarked(vmm.FindMarked(marker), marker, 10*time.Second))
	<-exited
	if got := vmm.FindMarked(marker); len(got) != 0 {
		t.Fatalf("still marked: %v", got)
	}
	again, err := vmm.LockDisks(spec.Disks)
	if err != nil {
		t.Fatalf("disk still locked after the VMM died: %v", err)
	}
	vmm.CloseAll(again)
	f, _ := os.Open(disk)
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
