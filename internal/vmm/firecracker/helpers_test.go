package firecracker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/firecracker/fakefc"
)

// fakeBinary is cmd/fake-firecracker, built once for the whole package.
var fakeBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakefc-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeBinary = filepath.Join(dir, "fake-firecracker")
	out, err := exec.Command(goTool(), "build", "-o", fakeBinary, "github.com/banger-dev/banger/cmd/fake-firecracker").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fake firecracker: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool finds the go command even when PATH lacks it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// fake is one configured fake Firecracker: a wrapper script that execs the
// fake binary with the test's --fake-* flags, so the driver's argv stays
// exactly what it would give the real binary.
type fake struct {
	bin    string // pass as Options.Binary
	record string // JSON-lines request log
}

func newFake(t *testing.T, flags ...string) fake {
	t.Helper()
	dir := t.TempDir()
	f := fake{bin: filepath.Join(dir, "firecracker"), record: filepath.Join(dir, "requests.jsonl")}
	script := fmt.Sprintf("#!/bin/sh\nexec %q --fake-record %q %s \"$@\"\n", fakeBinary, f.record, strings.Join(flags, " "))
	if err := os.WriteFile(f.bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fake) requests(t *testing.T) []fakefc.Request {
	t.Helper()
	reqs, err := fakefc.ReadRecord(f.record)
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

func (f fake) driver(opts Options) *Driver {
	opts.Binary = f.bin
	return New(opts)
}

// testSpec is a VM with every kind of input the driver handles.
func testSpec(t *testing.T) vmm.Spec {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return vmm.Spec{
		ID:        "vm-0123",
		Name:      "dev",
		Dir:       filepath.Join(dir, "run"),
		VCPU:      2,
		MemoryMiB: 1024,
		Kernel:    write("vmlinuz", "MZ not an elf"),
		KernelELF: write("vmlinux", "\x7fELF fake kernel"),
		Initrd:    write("initrd.img", "070701 fake cpio"),
		Cmdline:   "quiet banger.vm=dev",
		Disks: []vmm.Disk{
			{ID: "base", Path: write("base.ext4", "base"), ReadOnly: true},
			{ID: "overlay", Path: write("overlay.ext4", "overlay")},
			{ID: "work", Path: write("work.ext4", "work")},
		},
		Net:        &vmm.NetIface{TAP: "tap-dev", MAC: "06:00:ac:1e:00:02"},
		ConsoleLog: filepath.Join(dir, "console.log"),
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// start boots spec and makes sure the process is gone after the test.
func start(t *testing.T, d *Driver, spec vmm.Spec) vmm.Machine {
	t.Helper()
	m, err := d.Start(ctxFor(t, 10*time.Second), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { m.Kill() })
	return m
}

func waitDone(t *testing.T, m vmm.Machine, d time.Duration) {
	t.Helper()
	select {
	case <-m.Done():
	case <-time.After(d):
		t.Fatalf("machine not done after %s", d)
	}
}

func assertGone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists (err=%v)", p, err)
		}
	}
}
