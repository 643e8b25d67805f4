package firecracker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/banger-dev/banger/internal/vmm"
)

// BaseBootArgs starts every guest command line. A boot_args value replaces
// Firecracker's default line instead of extending it, so everything the
// default would have given is restated here:
//   - console=ttyS0: the serial console, which Firecracker writes to its
//     stdout and the driver to Spec.ConsoleLog (the default line turns the
//     console off with 8250.nr_uarts=0);
//   - reboot=k: a guest reboot (and SendCtrlAltDel) resets through the
//     keyboard controller, which makes Firecracker exit: the clean stop;
//   - panic=1: a panic resets after 1 s, so a dead guest ends the process;
//   - pci=off: no PCI probing, since the driver never passes --enable-pci
//     (Firecracker >= 1.13 appends it anyway; repeating it is harmless);
//   - i8042.*: skip the slow keyboard-controller probes while keeping the
//     keyboard that SendCtrlAltDel needs.
//
// The default's "nomodule" is deliberately absent: banger's kernels keep
// their virtio drivers as modules, which banger-agent loads.
const BaseBootArgs = "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"

// BootArgs is the full boot_args for a spec's Cmdline: the base line, then
// banger's own arguments, so that on a repeated parameter banger's wins.
// No root= is added: no drive is a root device (see the package comment).
func BootArgs(cmdline string) string {
	return strings.Join(strings.Fields(BaseBootArgs+" "+cmdline), " ")
}

// Names and numbers the driver fixes for every VM.
const (
	apiSockName  = "fc.sock"
	vsockName    = "vsock.sock"
	stderrName   = "firecracker.log"
	loggerName   = "firecracker-api.log"
	metricsName  = "firecracker-metrics.json"
	consoleName  = "console.log" // when Spec.ConsoleLog is empty
	guestCID     = 3             // the lowest valid guest CID; never seen by the host kernel
	guestIfaceID = "eth0"
	maxTAPName   = 15 // IFNAMSIZ - 1
)

// step is one API call of the boot sequence. The sequence is data so that
// tests can check every body against the spec without a VMM.
type step struct {
	Method, Path string
	Body         any
}

// apiFiles are the files Firecracker itself creates, as it must be told
// them: host paths, or paths inside the chroot when jailed.
type apiFiles struct {
	Vsock, Log, Metrics string
}

// bootPlan is the pre-boot sequence of firecracker-notes.md §3: logger and
// metrics first (so later errors are logged), machine, boot source, drives,
// NIC, vsock, then InstanceStart. spec's paths must already be the ones
// Firecracker sees.
func bootPlan(spec vmm.Spec, f apiFiles, v Version) []step {
	put := func(path string, body any) step { return step{http.MethodPut, path, body} }
	on := true
	metrics := Metrics{MetricsPath: f.Metrics}
	if v.Supports("metrics.emit_id") {
		metrics.EmitID = &on // tags each metrics line with the VM id
	}
	plan := []step{
		put("/logger", Logger{LogPath: f.Log, Level: "Info", ShowLevel: &on}),
		put("/metrics", metrics),
		put("/machine-config", MachineConfig{VCPUCount: spec.VCPU, MemSizeMiB: spec.MemoryMiB}),
		put("/boot-source", BootSource{
			KernelImagePath: kernelPath(spec),
			BootArgs:        BootArgs(spec.Cmdline),
			InitrdPath:      spec.Initrd,
		}),
	}
	for _, d := range spec.Disks {
		drv := Drive{DriveID: d.ID, PathOnHost: d.Path, IsReadOnly: d.ReadOnly}
		if !d.ReadOnly {
			// Unsafe (the default) drops guest flushes; the work and
			// overlay disks hold data worth an fsync.
			drv.CacheType = "Writeback"
		}
		plan = append(plan, put("/drives/"+d.ID, drv))
	}
	if spec.Net != nil {
		plan = append(plan, put("/network-interfaces/"+guestIfaceID, NetworkInterface{
			IfaceID: guestIfaceID, HostDevName: spec.Net.TAP, GuestMAC: spec.Net.MAC,
		}))
	}
	return append(plan,
		put("/vsock", Vsock{GuestCID: guestCID, UDSPath: f.Vsock}),
		put("/actions", InstanceActionInfo{ActionType: ActionInstanceStart}),
	)
}

func runPlan(ctx context.Context, c *Client, plan []step) error {
	for _, s := range plan {
		if err := c.do(ctx, s.Method, s.Path, s.Body, nil); err != nil {
			return err
		}
	}
	return nil
}

func kernelPath(spec vmm.Spec) string {
	if spec.KernelELF != "" {
		return spec.KernelELF
	}
	return spec.Kernel
}

var apiID = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// validateSpec rejects, before anything is spawned, what Firecracker would
// reject later with a less helpful message.
func validateSpec(spec vmm.Spec) error {
	if spec.Dir == "" {
		return errors.New("spec has no runtime directory")
	}
	if spec.VCPU < 1 || spec.VCPU > 32 {
		return fmt.Errorf("vcpu count %d outside firecracker's 1..32", spec.VCPU)
	}
	if spec.MemoryMiB < 1 {
		return fmt.Errorf("memory %d MiB is not positive", spec.MemoryMiB)
	}
	if spec.Restore == "" { // a restore loads no kernel
		if err := checkELF(kernelPath(spec)); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, d := range spec.Disks {
		if !apiID.MatchString(d.ID) {
			return fmt.Errorf("disk id %q: firecracker drive ids are [A-Za-z0-9_]+", d.ID)
		}
		if seen[d.ID] {
			return fmt.Errorf("disk id %q used twice", d.ID)
		}
		seen[d.ID] = true
	}
	if n := spec.Net; n != nil && (n.TAP == "" || len(n.TAP) > maxTAPName) {
		return fmt.Errorf("tap name %q must be 1..%d characters", n.TAP, maxTAPName)
	}
	return nil
}

// checkELF insists on an ELF vmlinux: released Firecracker versions load
// nothing else on x86_64 (bzImage support exists only on main).
func checkELF(path string) error {
	if path == "" {
		return errors.New("spec has no kernel")
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open kernel: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, []byte("\x7fELF")) {
		return fmt.Errorf("kernel %s is not an ELF vmlinux, which firecracker needs: extract one from the bzImage (internal/kernel/vmlinux) and set KernelELF", path)
	}
	return nil
}
