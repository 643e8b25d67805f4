package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm/firecracker"
	"github.com/banger-dev/banger/internal/vmm/qemu"
	"github.com/spf13/cobra"
)

// check is one doctor finding.
type check struct {
	Status string `json:"status"` // pass | warn | fail
	Name   string `json:"name"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

func newDoctorCmd(env *Env) *cobra.Command {
	var asJSON, sudoers bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this host can run banger VMs, and say how to fix what is missing",
		Long: `Check everything a VM run needs: architecture, VMM and acceleration, tools,
privileges, host networking (bridge, nftables, DNS, .vm names, ssh-config),
runtime directory, store, images and kernels, and the resolved VM defaults
with where each comes from. --sudoers prints the sudoers snippet a non-root
user needs. Doctor never changes anything (the
store is opened read-only). Exits 1 when a check fails.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sudoers {
				return printSudoers(env)
			}
			checks := doctor(cmd.Context(), env.Paths)
			failed := false
			for _, c := range checks {
				failed = failed || c.Status == "fail"
			}
			if asJSON {
				if err := printJSON(env.Out, checks); err != nil {
					return err
				}
			} else {
				for _, c := range checks {
					fmt.Fprintf(env.Out, "%-4s  %-12s %s\n", map[string]string{"pass": "ok", "warn": "WARN", "fail": "FAIL"}[c.Status], c.Name, c.Detail)
					if c.Fix != "" {
						fmt.Fprintf(env.Out, "      %-12s fix: %s\n", "", c.Fix)
					}
				}
			}
			if failed {
				return exitError{ExitError}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&sudoers, "sudoers", false, "print the sudoers snippet that lets a non-root user run banger's network operations")
	return cmd
}

func doctor(ctx context.Context, paths config.Paths) []check {
	var out []check
	add := func(status, name, detail, fix string) { out = append(out, check{status, name, detail, fix}) }
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
	out = append(out, binaryChecks()...)
	out = append(out, runtimeDirCheck(paths))
	out = append(out, storeChecks(ctx, paths, cfg)...)
	out = append(out, defaultsCheck(cfg))
	return out
}

// vmmChecks reports both drivers and which one new VMs get, and why.
func vmmChecks(cfg config.Config) []check {
	var out []check
	fc := firecracker.New(firecracker.Options{Binary: cfg.FirecrackerBin})
	fcErr := fc.Available()
	if fcErr != nil {
		out = append(out, check{"warn", "firecracker", fcErr.Error(), "install firecracker on a host with usable KVM for ~125 ms boots (or set firecracker_bin)"})
	} else {
		out = append(out, check{"pass", "firecracker", fc.Accel(), ""})
	}
	q := qemu.New(qemu.Options{Binary: cfg.QEMUBin, Accel: cfg.QEMUAccel})
	qErr := q.Available()
	if qErr != nil {
		out = append(out, check{"fail", "qemu", qErr.Error(), "apt-get install --no-install-recommends qemu-system-x86"})
	} else {
		status, fix := "pass", ""
		if q.AccelMode() == "tcg" {
			status, fix = "warn", "software emulation works, only slower (a systemd guest reaches the agent in ~5 s, sshd in ~20 s)"
		}
		out = append(out, check{status, "qemu", q.Accel(), fix})
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
	out = append(out, check{status, "vmm", chosen + " (" + why + ")", ""})
	return out
}

func binaryChecks() []check {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	var out []check
	for _, b := range []string{"bangerd", "banger-agent"} {
		p := filepath.Join(filepath.Dir(self), b)
		if _, err := os.Stat(p); err != nil {
			out = append(out, check{"fail", b, "not found beside " + self, "`make build` and use bin/banger, or `make install` (banger, bangerd and banger-agent in one directory)"})
		} else {
			out = append(out, check{"pass", b, p, ""})
		}
	}
	return out
}

func runtimeDirCheck(paths config.Paths) check {
	err := paths.CheckRuntimeDir()
	switch {
	case err == nil:
		return check{"pass", "runtime dir", paths.RuntimeDir + " (0700, yours)", ""}
	case errors.Is(err, os.ErrNotExist):
		return check{"pass", "runtime dir", paths.RuntimeDir + " (created on first use)", ""}
	}
	return check{"fail", "runtime dir", err.Error(), "remove it; banger recreates it with mode 0700"}
}

func storeChecks(ctx context.Context, paths config.Paths, cfg config.Config) []check {
	if _, err := os.Stat(paths.Database()); errors.Is(err, os.ErrNotExist) {
		return []check{{"warn", "store", "no database yet at " + paths.Database(),
			"the first `banger vm run` creates it and builds the default image and kernel (about 90 s)"}}
	}
	st, err := store.OpenReadOnly(ctx, paths.Database())
	if err != nil {
		return []check{{"fail", "store", err.Error(), "check permissions of " + paths.Database()}}
	}
	defer st.Close()
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return []check{{"fail", "store", "unreadable: " + err.Error(), "move " + paths.Database() + " aside"}}
	}
	switch latest := store.LatestSchema(); {
	case v > latest:
		return []check{{"fail", "store", fmt.Sprintf("%s has schema %d, newer than this banger's %d", paths.Database(), v, latest),
			"use the newer banger that wrote it"}}
	case v < latest:
		// Doctor never migrates; the lookups below may need the new schema.
		return []check{{"pass", "store", fmt.Sprintf("%s (schema %d; the daemon migrates it to %d when it next starts)", paths.Database(), v, latest), ""}}
	}
	out := []check{{"pass", "store", fmt.Sprintf("%s (schema %d)", paths.Database(), v), ""}}
	if im, err := st.GetImage(ctx, cfg.DefaultImage); errors.Is(err, store.ErrNotFound) {
		out = append(out, check{"warn", "image", cfg.DefaultImage + " not built", "`banger image build` (or the first vm run builds it)"})
	} else if err != nil {
		out = append(out, check{"fail", "image", err.Error(), "move " + paths.Database() + " aside"})
	} else {
		out = append(out, check{"pass", "image", im.Name + " " + im.Path, ""})
	}
	if k, err := st.GetKernel(ctx, cfg.DefaultKernel); errors.Is(err, store.ErrNotFound) {
		out = append(out, check{"warn", "kernel", cfg.DefaultKernel + " not imported", "`banger kernel import` (or the first vm run imports it)"})
	} else if err != nil {
		out = append(out, check{"fail", "kernel", err.Error(), "move " + paths.Database() + " aside"})
	} else {
		out = append(out, check{"pass", "kernel", k.Name + " " + k.Release, ""})
	}
	return out
}

func defaultsCheck(cfg config.Config) check {
	s, err := config.Resolve(0, 0, 0, cfg.VMDefaults, config.ProbeHost())
	if err != nil {
		return check{"fail", "defaults", err.Error(), "fix [vm_defaults] in config.toml"}
	}
	return check{"pass", "defaults", fmt.Sprintf("vcpu %d (%s) · memory %d MiB (%s) · disk %s (%s)",
		s.VCPU, s.VCPUFrom, s.MemoryMiB, s.MemoryFrom, config.FormatSize(s.DiskBytes), s.DiskFrom), ""}
}
