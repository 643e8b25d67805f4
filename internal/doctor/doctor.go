// Package doctor is `banger doctor`'s host checks. They run in bangerd
// (`bangerd doctor [--json] [--sudoers]`), which links the store, the
// drivers, the kernel tools and host networking, so that the banger CLI
// does not; the CLI runs bangerd and renders its report. Doctor needs no
// running daemon and never changes anything: a broken config or a
// database from a newer banger is a finding, not a failure to start.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/doctor/report"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/vmm/firecracker"
	"github.com/banger-dev/banger/internal/vmm/qemu"
)

// Check is one finding (report.Check, defined here so that the checks
// can spell findings positionally).
type Check report.Check

// Report is checks as `bangerd doctor --json` prints them.
func Report(checks []Check) []report.Check {
	out := make([]report.Check, len(checks))
	for i, c := range checks {
		out[i] = report.Check(c)
	}
	return out
}

// Options says where the checks look beyond paths.
type Options struct {
	// Client is the banger binary whose neighbours (bangerd,
	// banger-agent) are checked; empty: this binary.
	Client string
}

// Run performs every check, in the order `banger doctor` prints them.
func Run(ctx context.Context, paths config.Paths, opts Options) []Check {
	var out []Check
	add := func(status, name, detail, fix string) { out = append(out, Check{status, name, detail, fix}) }
	if runtime.GOARCH == "amd64" {
		add("pass", "arch", "linux/amd64", "")
	} else {
		add("fail", "arch", runtime.GOOS+"/"+runtime.GOARCH, "banger supports linux/amd64 hosts only")
	}
	cfg, cfgErr := config.Load(paths.ConfigFile())
	if cfgErr != nil {
		// Reported here once; the other checks look at the built-in
		// defaults rather than at what half-parsed.
		add("fail", "config", cfgErr.Error(), "fix or remove "+paths.ConfigFile()+" (the checks below use the built-in defaults)")
		cfg = config.Defaults()
	} else {
		add("pass", "config", paths.ConfigFile(), "")
	}
	out = append(out, vmmChecks(cfg)...)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		add("fail", "tun", "/dev/net/tun missing", "modprobe tun")
	} else {
		add("pass", "tun", "/dev/net/tun", "")
	}
	out = append(out, networkChecks(cfg, paths)...)
	for _, t := range []struct{ bin, pkg, why string }{
		{"mkfs.ext4", "e2fsprogs", "per-VM disks"},
		{"depmod", "kmod", "the kernel's module disk"},
		{"mmdebstrap", "mmdebstrap", "building the golden image"},
		{"apt-get", "apt", "downloading the kernel"},
		{"dpkg", "dpkg", "unpacking the kernel"},
		{"ssh", "openssh-client", "banger vm ssh"},
	} {
		if p, err := kernel.SbinTool(t.bin, t.pkg); err != nil {
			add("fail", t.bin, "not found (needed for "+t.why+")", "apt-get install "+t.pkg)
		} else {
			add("pass", t.bin, p, "")
		}
	}
	out = append(out, binaryChecks(opts.Client)...)
	out = append(out, runtimeDirCheck(paths))
	out = append(out, storeChecks(ctx, paths, cfg)...)
	out = append(out, defaultsCheck(cfg))
	return out
}

// vmmChecks reports both drivers and which one new VMs get, and why.
func vmmChecks(cfg config.Config) []Check {
	var out []Check
	fc := firecracker.New(firecracker.Options{Binary: cfg.FirecrackerBin})
	fcErr := fc.Available()
	if fcErr != nil {
		out = append(out, Check{"warn", "firecracker", fcErr.Error(), "install firecracker on a host with usable KVM for ~125 ms boots (or set firecracker_bin)"})
	} else {
		out = append(out, Check{"pass", "firecracker", fc.Accel(), ""})
	}
	q := qemu.New(qemu.Options{Binary: cfg.QEMUBin, Accel: cfg.QEMUAccel})
	qErr := q.Available()
	if qErr != nil {
		out = append(out, Check{"fail", "qemu", qErr.Error(), "apt-get install --no-install-recommends qemu-system-x86"})
	} else {
		status, fix := "pass", ""
		if q.AccelMode() == "tcg" {
			status, fix = "warn", "software emulation works, only slower (a systemd guest reaches the agent in ~5 s, sshd in ~20 s)"
		}
		out = append(out, Check{status, "qemu", q.Accel(), fix})
	}
	chosen, why := "qemu", "vmm = "+cfg.VMM
	switch {
	case cfg.VMM == "firecracker":
		chosen = "firecracker"
	case cfg.VMM == "auto" && fcErr == nil:
		chosen, why = "firecracker", "auto: firecracker binary found and KVM usable"
	case cfg.VMM == "auto":
		why = "auto: firecracker unavailable"
	}
	status := "pass"
	if (chosen == "qemu" && qErr != nil) || (chosen == "firecracker" && fcErr != nil) {
		status = "fail"
	}
	out = append(out, Check{status, "vmm", chosen + " (" + why + ")", ""})
	return out
}

// binaryChecks looks for bangerd and banger-agent beside client (the
// banger CLI that asked), else beside this binary.
func binaryChecks(client string) []Check {
	if client == "" {
		self, err := os.Executable()
		if err != nil {
			return nil
		}
		client = self
	}
	var out []Check
	for _, b := range []string{"bangerd", "banger-agent"} {
		out = append(out, binaryCheck(client, b))
	}
	return out
}

// binaryCheck is whether binary b lies beside client.
func binaryCheck(client, b string) Check {
	p := filepath.Join(filepath.Dir(client), b)
	if _, err := os.Stat(p); err != nil {
		return Check{"fail", b, "not found beside " + client, "`make build` and use bin/banger, or `make install` (banger, bangerd and banger-agent in one directory)"}
	}
	return Check{"pass", b, p, ""}
}

func runtimeDirCheck(paths config.Paths) Check {
	err := paths.CheckRuntimeDir()
	switch {
	case err == nil:
		return Check{"pass", "runtime dir", paths.RuntimeDir + " (0700, yours)", ""}
	case errors.Is(err, os.ErrNotExist):
		return Check{"pass", "runtime dir", paths.RuntimeDir + " (created on first use)", ""}
	}
	return Check{"fail", "runtime dir", err.Error(), "remove it; banger recreates it with mode 0700"}
}

func defaultsCheck(cfg config.Config) Check {
	s, err := config.Resolve(0, 0, 0, cfg.VMDefaults, config.ProbeHost())
	if err != nil {
		return Check{"fail", "defaults", err.Error(), "fix [vm_defaults] in config.toml"}
	}
	return Check{"pass", "defaults", fmt.Sprintf("vcpu %d (%s) · memory %d MiB (%s) · disk %s (%s)",
		s.VCPU, s.VCPUFrom, s.MemoryMiB, s.MemoryFrom, config.FormatSize(s.DiskBytes), s.DiskFrom), ""}
}
