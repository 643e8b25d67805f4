package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/initramfs"
	"github.com/banger-dev/banger/internal/vmm"
)

// tickerInit is the guest's whole userland: /init prints a boot line,
// then a tick every 100 ms on the serial console.
const tickerInit = `package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("snaptest boot")
	for i := 0; ; i++ {
		fmt.Printf("tick %d\n", i)
		time.Sleep(100 * time.Millisecond)
	}
}
`

// testKernel is a guest kernel directory (vmlinuz + modules.cpio): the
// one the e2e suite caches, or $BANGER_TEST_KERNEL_DIR.
// realGuest skips a real-guest test outside the e2e run (it boots a real
// guest kernel, which the e2e suite provisions: `make e2e`, and so `make
// check`, runs these right after the suite) and returns the driver and
// the kernel directory.
func realGuest(t *testing.T) (*Driver, string) {
	t.Helper()
	if os.Getenv("BANGER_E2E") == "" {
		t.Skip("real-guest test: run by `make e2e` (BANGER_E2E=1) once the guest kernel is cached")
	}
	d := New(Options{})
	if err := d.Available(); err != nil {
		t.Fatalf("this test needs QEMU (make setup installs it): %v", err)
	}
	return d, testKernel(t)
}

func testKernel(t *testing.T) string {
	if dir := os.Getenv("BANGER_TEST_KERNEL_DIR"); dir != "" {
		return dir
	}
	cache := os.Getenv("BANGER_E2E_CACHE")
	if cache == "" {
		cache = "/var/cache/banger-e2e"
	}
	m, _ := filepath.Glob(filepath.Join(cache, "banger", "kernels", "*", "vmlinuz"))
	if len(m) == 0 {
		t.Fatalf("this test needs a guest kernel: run `make e2e` once to fill %s, or set BANGER_TEST_KERNEL_DIR to a directory with vmlinuz and modules.cpio", cache)
	}
	return filepath.Dir(m[0])
}

// tickerInitramfs builds the ticker as a static /init.
func tickerInitramfs(t *testing.T, kernelDir string) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module ticker\n\ngo 1.21\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(tickerInit), 0o600)
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", "ticker", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the guest init: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "initrd.cpio")
	if err := initramfs.BuildFile(context.Background(), out, filepath.Join(dir, "ticker"), filepath.Join(kernelDir, "modules.cpio")); err != nil {
		t.Fatal(err)
	}
	return out
}

var tickRE = regexp.MustCompile(`tick (\d+)`)

// lastTick is the highest tick in a console log, -1 if none.
func lastTick(path string) int {
	b, _ := os.ReadFile(path)
	last := -1
	for _, m := range tickRE.FindAllSubmatch(b, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		last = max(last, n)
	}
	return last
}

// waitTick waits until the console shows a tick above after.
func waitTick(t *testing.T, path string, after int, within time.Duration) int {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n := lastTick(path); n > after {
			return n
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("no tick above %d within %v; console:\n%s", after, within, lastLines(string(b), 20))
	return 0
}

// A real guest under real QEMU is paused (its console stops), resumed
// (it continues), saved to a file, resumed again, killed, restored by a
// new QEMU from that file — paused until Resume — and then continues
// counting where it was saved instead of booting again.
func TestSaveAndRestoreRealGuest(t *testing.T) {
	d, kdir := realGuest(t)
	root := t.TempDir()
	disk := filepath.Join(root, "work1.raw")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := vmm.Spec{ID: "snaptest", Dir: filepath.Join(root, "rt1"), VCPU: 1, MemoryMiB: 256,
		Kernel: filepath.Join(kdir, "vmlinuz"), Initrd: tickerInitramfs(t, kdir), Cmdline: "quiet",
		ConsoleLog: filepath.Join(root, "console1.log"), Disks: []vmm.Disk{{ID: "work", Path: disk}}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	s := m.(vmm.Snapshotter)
	waitTick(t, spec.ConsoleLog, 3, 90*time.Second)

	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx); err != nil {
		t.Fatalf("a second Pause: %v", err)
	}
	paused := lastTick(spec.ConsoleLog)
	time.Sleep(700 * time.Millisecond)
	if n := lastTick(spec.ConsoleLog); n > paused+1 { // one line may be in flight
		t.Fatalf("the guest kept running while paused: tick %d -> %d", paused, n)
	}
	if err := s.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitTick(t, spec.ConsoleLog, paused+1, 30*time.Second)

	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	saved := lastTick(spec.ConsoleLog)
	snap := filepath.Join(root, "snap dir's") // a path that needs quoting
	os.Mkdir(snap, 0o700)
	st, err := s.SaveState(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	if st.Driver != "qemu" || !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(st.VMMVersion) || st.Bytes <= 0 {
		t.Errorf("saved state %+v", st)
	}
	t.Logf("saved at tick %d: %+v", saved, st)
	// The saved machine is paused and usable: it resumes (from QEMU's
	// postmigrate), as after a snapshot of a running VM.
	if err := s.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitTick(t, spec.ConsoleLog, saved, 30*time.Second)
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}

	// The state of a machine with another memory size is refused — by
	// banger from the state's memory note, or with QEMU's own words for a
	// state that carries its RAM — and no process stays. (QEMU accepts a state into
	// a machine with more vCPUs or an extra trailing device: the caller
	// must keep the device set, QEMU does not check all of it.)
	bad := spec
	bad.Dir, bad.ConsoleLog, bad.Restore, bad.MemoryMiB = filepath.Join(root, "rt-bad"), filepath.Join(root, "console-bad.log"), snap, 128
	bm, err := d.Start(ctx, bad)
	t.Logf("restore into 128 MiB: %v", err)
	if err == nil || !regexp.MustCompile(`qemu refused the saved state: .*(ram|migration)|has 256 MiB of memory, the machine 128 MiB`).MatchString(err.Error()) {
		t.Errorf("restore into 128 MiB: %v", err)
		if err == nil {
			bm.Kill()
		}
	}
	if pid, err := os.ReadFile(filepath.Join(bad.Dir, PIDFile)); err == nil {
		if n, _ := strconv.Atoi(strings.TrimSpace(string(pid))); n > 0 && alive(vmm.Handles{PID: n}) {
			t.Errorf("the refused restore left qemu pid %d", n)
		}
	}

	// Same device set; the disk may have another path (a copy).
	copyDisk := filepath.Join(root, "work2.raw")
	if err := os.Rename(disk, copyDisk); err != nil {
		t.Fatal(err)
	}
	spec.Disks = []vmm.Disk{{ID: "work", Path: copyDisk}}
	spec.Dir, spec.ConsoleLog, spec.Restore = filepath.Join(root, "rt2"), filepath.Join(root, "console2.log"), snap
	start := time.Now()
	r, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Kill()
	t.Logf("restored (paused) in %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	if n := lastTick(spec.ConsoleLog); n != -1 {
		t.Fatalf("the restored guest ran before Resume: tick %d", n)
	}
	if err := r.(vmm.Snapshotter).Resume(ctx); err != nil {
		t.Fatal(err)
	}
	n := waitTick(t, spec.ConsoleLog, saved, 30*time.Second)
	b, _ := os.ReadFile(spec.ConsoleLog)
	if regexp.MustCompile(`snaptest boot|tick 0\n`).Match(b) {
		t.Errorf("the restored guest booted again instead of continuing:\n%s", b)
	}
	t.Logf("continued at tick %d (saved at %d)", n, saved)
}
