// Package qemu is the QEMU VMM driver: QEMU's microvm machine (virtio-mmio,
// direct kernel boot), controlled over QMP, with KVM when the host can run
// standard guests with it and TCG otherwise. The guest agent is reached
// through a virtio-serial port backed by a unix socket.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/vmm"
)

// Options configure the driver.
type Options struct {
	Binary string // qemu-system-x86_64 by default
	Accel  string // auto | kvm | tcg
}

// Driver starts QEMU microvm machines.
type Driver struct {
	bin      string
	accel    string
	accelWhy string
	binErr   error
	tscKHz   int

	versionOnce sync.Once
	version     string
	versionErr  error
}

var _ vmm.Driver = (*Driver)(nil)

// New resolves the binary and the acceleration once.
func New(o Options) *Driver {
	d := &Driver{}
	bin := o.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	d.bin, d.binErr = exec.LookPath(bin)
	if d.binErr != nil {
		d.binErr = fmt.Errorf("%s not found: install it with `apt-get install qemu-system-x86` (or set qemu_bin in config.toml)", bin)
	}
	d.accel, d.accelWhy = chooseAccel(o.Accel)
	d.tscKHz = hostTSCKHz()
	return d
}

func (d *Driver) Name() string      { return "qemu" }
func (d *Driver) Available() error  { return d.binErr }
func (d *Driver) Accel() string     { return d.accel + " (" + d.accelWhy + ")" }
func (d *Driver) AccelMode() string { return d.accel }

// Version is QEMU's release ("7.2.22"), read from the first line of
// `qemu-system-x86_64 --version` once per driver: the form query-version
// gives SavedState.VMMVersion. A saved state loads only into the QEMU
// that wrote it.
func (d *Driver) Version(context.Context) (string, error) {
	d.versionOnce.Do(func() {
		if d.binErr != nil {
			d.versionErr = d.binErr
			return
		}
		out, err := exec.Command(d.bin, "--version").Output()
		if err != nil {
			d.versionErr = fmt.Errorf("%s --version: %w", d.bin, err)
			return
		}
		d.version, d.versionErr = parseVersion(string(out))
	})
	return d.version, d.versionErr
}

var _ vmm.Versioner = (*Driver)(nil)

// parseVersion takes "QEMU emulator version 7.2.22 (Debian ...)" to
// "7.2.22".
func parseVersion(out string) (string, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	_, rest, ok := strings.Cut(line, "version ")
	v, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
	if !ok || v == "" || strings.Trim(v, "0123456789.") != "" {
		return "", fmt.Errorf("qemu --version: cannot read a version from %q", line)
	}
	return v, nil
}

// chooseAccel decides between KVM and TCG. PVM-backed KVM (kvm_pvm) runs
// only guests built with CONFIG_PVM_GUEST, so standard kernels need TCG.
func chooseAccel(want string) (string, string) {
	switch want {
	case "kvm":
		return "kvm", "forced by qemu_accel"
	case "tcg":
		return "tcg", "forced by qemu_accel"
	}
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return "tcg", "/dev/kvm is PVM-backed (kvm_pvm) and cannot run standard guest kernels"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg", "no usable /dev/kvm: " + err.Error()
	}
	f.Close()
	return "kvm", "/dev/kvm is usable"
}

// tcgCacheMiB bounds TCG's translation cache (tb-size, MiB). QEMU 7.2
// sizes it at 1 GiB on this host, and a systemd boot fills ~280 MiB of
// it that no other QEMU shares: most of a cold VM's memory. Measured
// (docs/research/snapshots-qemu72.md): 64 MiB halves a booted guest's
// PSS (601 → 321 MiB) with no slower boot or exec; a workload whose code
// outgrows it is retranslated after a cache flush, not refused.
const tcgCacheMiB = 64

// hostTSCKHz estimates the host TSC rate. Under TCG the guest reads the
// host TSC; microvm guests hang calibrating it unless told its rate.
func hostTSCKHz() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			var mhz float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f", &mhz); err == nil {
				return int(mhz * 1000)
			}
		}
	}
	return 0
}

// Args builds the QEMU command line for spec. Keep the order of the
// devices stable: a restore (Spec.Restore) loads a state only into the
// same device set, and QEMU identifies virtio-mmio devices by their slot,
// which follows command-line order. Changing the order or adding a device
// before existing ones invalidates every saved state. With Spec.Restore
// the command line is the same plus `-incoming defer`.
func (d *Driver) Args(spec vmm.Spec) []string {
	qmp := filepath.Join(spec.Dir, "qmp.sock")
	agent := filepath.Join(spec.Dir, "agent.sock")
	cmdline := []string{"console=ttyS0", "reboot=t", "panic=-1", "8250.nr_uarts=1"}
	a := []string{
		// The marker (vmm.Marker) finds this process when no handles
		// were written; the pidfile is written by QEMU itself.
		"-name", vmm.Marker(spec.ID),
		"-pidfile", filepath.Join(spec.Dir, PIDFile),
		"-M", "microvm,x-option-roms=off,isa-serial=on,rtc=on,memory-backend=" + memoryID,
		"-smp", fmt.Sprint(spec.VCPU),
		"-m", fmt.Sprintf("%dM", spec.MemoryMiB),
		"-object", memoryObject(spec),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", spec.Kernel,
		"-chardev", "file,id=con,path=" + spec.ConsoleLog,
		"-serial", "chardev:con",
		"-qmp", "unix:" + qmp + ",server=on,wait=off",
		"-device", "virtio-rng-device",
		"-device", "virtio-serial-device,max_ports=2",
		"-chardev", "socket,id=agent,path=" + agent + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=" + proto.SerialPortName,
	}
	if d.accel == "kvm" {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		a = append(a, "-accel", fmt.Sprintf("tcg,thread=multi,tb-size=%d", tcgCacheMiB), "-cpu", "max")
		if d.tscKHz > 0 {
			cmdline = append(cmdline, fmt.Sprintf("tsc_early_khz=%d", d.tscKHz))
		}
		if spec.VCPU > 1 {
			cmdline = append(cmdline, "tsc=reliable")
		}
	}
	if spec.Initrd != "" {
		a = append(a, "-initrd", spec.Initrd)
	}
	for _, disk := range spec.Disks {
		drive := fmt.Sprintf("id=%s,file=%s,format=raw,if=none,cache=unsafe,aio=threads", disk.ID, disk.Path)
		if disk.ReadOnly {
			drive = fmt.Sprintf("id=%s,file=%s,format=raw,if=none,readonly=on", disk.ID, disk.Path)
		}
		a = append(a, "-drive", drive, "-device", "virtio-blk-device,drive="+disk.ID)
	}
	if spec.Net != nil {
		a = append(a,
			"-netdev", "tap,id=net0,ifname="+spec.Net.TAP+",script=no,downscript=no",
			"-device", "virtio-net-device,netdev=net0,mac="+spec.Net.MAC)
	}
	if spec.Cmdline != "" {
		cmdline = append(cmdline, spec.Cmdline)
	}
	a = append(a, "-append", strings.Join(cmdline, " "))
	if spec.Restore != "" {
		a = append(restoreArgs(a), "-incoming", "defer") // restoreargs.go
	}
	return a
}

// memoryID names the RAM backend object. It is the id QEMU gives the
// backend it creates when none is named (the machine's default_ram_id),
// so the RAM block keeps its name — and states saved before banger named
// the backend stay restorable — whichever backend a VM uses.
const memoryID = "microvm.ram"

// memoryObject is the -object that holds the guest's RAM: a shared
// memfd (a boot, memfd.go), anonymous memory (a restore), a file mapped
// shared (a warm-start template), or a file mapped privately,
// copy-on-write (a warm clone). A private file is handed over
// as an inherited descriptor (see memoryFD), so QEMU maps exactly the
// file the daemon checked: given a missing path QEMU would create a
// zero-filled file and "restore" into it without complaint.
func memoryObject(spec vmm.Spec) string {
	size := fmt.Sprintf("size=%dM", spec.MemoryMiB)
	switch {
	case spec.Memory.File == "" && spec.Restore == "":
		return memfdObject(spec) // memfd.go
	case spec.Memory.File == "":
		return "memory-backend-ram,id=" + memoryID + "," + size
	case spec.Memory.Shared:
		return "memory-backend-file,id=" + memoryID + "," + size + ",mem-path=" + strings.ReplaceAll(spec.Memory.File, ",", ",,") + ",share=on"
	}
	return fmt.Sprintf("memory-backend-file,id=%s,%s,mem-path=/proc/self/fd/%d,share=off", memoryID, size, memoryFD(spec))
}

// memoryFD is the descriptor number QEMU inherits a private memory file
// on: after the Inherit files, which start at 3.
func memoryFD(spec vmm.Spec) int { return 3 + len(spec.Inherit) }

// PIDFile is the name of the pidfile QEMU writes in the VM's runtime dir.
const PIDFile = "qemu.pid"

// ErrExited is returned when QEMU exits during start-up.
var ErrExited = errors.New("qemu exited during start-up")
