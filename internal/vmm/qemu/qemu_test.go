package qemu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

func testSpec(dir string) vmm.Spec {
	return vmm.Spec{
		ID: "abc", Name: "dev", Dir: dir, VCPU: 2, MemoryMiB: 1024,
		Kernel: "/k/vmlinuz", Initrd: "/k/initrd", Cmdline: "quiet",
		Disks: []vmm.Disk{{ID: "base", Path: "/img/base.ext4", ReadOnly: true}, {ID: "work", Path: "/vm/work.ext4"}},
		Net:   &vmm.NetIface{TAP: "bgt1", MAC: "52:54:00:00:00:01"}, ConsoleLog: "/vm/console.log",
	}
}

func TestArgsTCG(t *testing.T) {
	d := &Driver{bin: "qemu", accel: "tcg", tscKHz: 2100000}
	a := strings.Join(d.Args(testSpec("/rt")), " ")
	for _, want := range []string{
		"-M microvm,", "-smp 2", "-m 1024M", "-nodefaults", "-no-reboot",
		"-accel tcg,thread=multi,tb-size=64 -cpu max",
		"-kernel /k/vmlinuz", "-initrd /k/initrd",
		"-drive id=base,file=/img/base.ext4,format=raw,if=none,readonly=on -device virtio-blk-device,drive=base",
		"-drive id=work,file=/vm/work.ext4,format=raw,if=none,cache=unsafe",
		"-netdev tap,id=net0,ifname=bgt1,script=no,downscript=no -device virtio-net-device,netdev=net0,mac=52:54:00:00:00:01",
		"-qmp unix:/rt/qmp.sock,server=on,wait=off",
		"socket,id=agent,path=/rt/agent.sock,server=on,wait=off", "virtserialport,chardev=agent,name=banger.agent",
		"file,id=con,path=/vm/console.log",
		"console=ttyS0", "tsc_early_khz=2100000", "tsc=reliable", "quiet",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("args lack %q:\n%s", want, a)
		}
	}
	if strings.Contains(a, "kvm") {
		t.Errorf("TCG args mention kvm: %s", a)
	}
}

func TestArgsKVMAndOneVCPU(t *testing.T) {
	d := &Driver{bin: "qemu", accel: "kvm", tscKHz: 2100000}
	s := testSpec("/rt")
	s.VCPU = 1
	a := strings.Join(d.Args(s), " ")
	if !strings.Contains(a, "-accel kvm -cpu host") || strings.Contains(a, "tsc_early_khz") || strings.Contains(a, "tsc=reliable") {
		t.Errorf("kvm args: %s", a)
	}
}

func TestChooseAccelForced(t *testing.T) {
	for _, want := range []string{"kvm", "tcg"} {
		if got, why := chooseAccel(want); got != want || !strings.Contains(why, "forced") {
			t.Errorf("chooseAccel(%s) = %s (%s)", want, got, why)
		}
	}
}

func TestMissingBinaryIsExplained(t *testing.T) {
	d := New(Options{Binary: "/nonexistent/qemu-system-x86_64"})
	if err := d.Available(); err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Fatalf("Available() = %v", err)
	}
	if _, err := d.Start(context.Background(), testSpec(t.TempDir())); err == nil {
		t.Fatal("Start with a missing binary succeeded")
	}
}

// A QEMU that exits at once (here: a script standing in for it) is
// reported with the tail of its log, and nothing is left running.
func TestStartReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "qemu")
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'qemu: could not open kernel' >&2\nexit 1\n"), 0o755)
	d := &Driver{bin: fake, accel: "tcg"}
	_, err := d.Start(context.Background(), testSpec(filepath.Join(dir, "rt")))
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "could not open kernel") {
		t.Fatalf("err = %v", err)
	}
}

func TestAttachRefusesDeadOrReusedPID(t *testing.T) {
	d := &Driver{}
	if _, err := d.Attach(vmm.Handles{PID: 1 << 30}); err == nil {
		t.Error("attached to a PID that does not exist")
	}
	ticks, err := startTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Attach(vmm.Handles{PID: os.Getpid(), StartTicks: ticks + 1}); err == nil {
		t.Error("attached despite a start-time mismatch (PID reuse)")
	}
	m, err := d.Attach(vmm.Handles{PID: os.Getpid(), StartTicks: ticks})
	if err != nil {
		t.Fatalf("attach to a live process: %v", err)
	}
	select {
	case <-m.Done():
		t.Error("live process reported done")
	default:
	}
}

// Diagnose speaks real QMP to a real QEMU (a microvm with no kernel: its
// firmware finds nothing to boot and halts, which is enough to be asked
// about its vCPUs).
func TestDiagnoseDumpsRegistersOverQMP(t *testing.T) {
	d := New(Options{})
	if err := d.Available(); err != nil {
		t.Fatalf("this test needs QEMU (make setup installs it): %v", err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	cmd := exec.Command(d.bin, "-M", "microvm", "-nodefaults", "-no-user-config", "-display", "none",
		"-accel", "tcg", "-m", "64M", "-qmp", "unix:"+sock+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := waitSockets(context.Background(), nil, sock); err != nil {
		t.Fatal(err)
	}
	m := &Machine{h: vmm.Handles{ControlSock: sock}}
	// The socket file exists from bind(); QEMU listens a moment later.
	out, err := m.Diagnose(context.Background())
	for deadline := time.Now().Add(5 * time.Second); err != nil && strings.Contains(err.Error(), "connection refused") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		out, err = m.Diagnose(context.Background())
	}
	if err != nil {
		t.Fatalf("Diagnose: %v\n%s", err, out)
	}
	for _, want := range []string{"(qemu) info cpus", "CPU #0", "(qemu) info registers -a", "IP="} {
		if !strings.Contains(out, want) {
			t.Errorf("Diagnose output lacks %q:\n%s", want, out)
		}
	}
	var _ vmm.Diagnoser = m
}
