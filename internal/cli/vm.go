package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// dnsLabel is what a VM name must be (the daemon checks it too).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func newVMCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Create, run, reach and remove VMs",
	}
	cmd.AddCommand(newVMRunCmd(f, nil), newVMCreateCmd(f, nil), newVMListCmd(f), newVMShowCmd(f),
		newVMSSHCmd(f), newVMStopCmd(f, nil), newVMStartCmd(f, nil), newVMDeleteCmd(f),
		newVMCpCmd(f), newVMExecCmd(f, nil), newVMRestartCmd(f), newVMSetCmd(f, nil), newVMStatsCmd(f),
		newVMPortsCmd(f), newVMLogsCmd(f, nil), newWorkspaceCmd(f),
		newVMPauseCmd(f), newVMResumeCmd(f), newVMSnapshotCmd(f), newVMForkCmd(f, nil), newVMForwardCmd(f, nil))
	return cmd
}

// sizeFlags are the sizing flags shared by create and run.
type sizeFlags struct {
	name, image, disk, vmm string
	vcpu, memory           int
	mem                    memoryValue
	cold                   bool
}

func (f *sizeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "VM name, a DNS label (default: generated)")
	fs.StringVar(&f.image, "image", "", "image to boot (default: "+config.DefaultImageName+", built on first use)")
	fs.IntVar(&f.vcpu, "vcpu", 0, "virtual CPUs (default: [vm_defaults] vcpu, else host CPUs/4, 1..4)")
	f.mem.mib = &f.memory
	fs.Var(&f.mem, "memory", "memory: 2G, 1.5G, 512M or plain MiB (default: [vm_defaults] memory, else host RAM/8, at most 8G)")
	fs.Var(diskValue{&f.disk}, "disk-size", "size of the VM's disks: 8G, 1.5T, 512M (sparse; default 8G)")
	fs.StringVar(&f.vmm, "vmm", "", "VMM driver: qemu or firecracker (default: vmm in config.toml, auto)")
	fs.BoolVar(&f.cold, "cold", false, "boot the kernel even when a start-up snapshot could start the VM warm ([snapshots] warm in config.toml)")
}

func (f *sizeFlags) params(cmd *cobra.Command) (api.CreateParams, error) {
	if cmd.Flags().Changed("vcpu") && f.vcpu < 1 {
		return api.CreateParams{}, usageError{fmt.Errorf("--vcpu %d: must be at least 1", f.vcpu)}
	}
	if cmd.Flags().Changed("memory") {
		if err := f.mem.check(); err != nil {
			return api.CreateParams{}, err
		}
	}
	if f.name != "" && !dnsLabel.MatchString(f.name) {
		return api.CreateParams{}, usageError{fmt.Errorf("--name %q is not a DNS label: use lowercase letters, digits and '-', at most 63, not starting or ending with '-'", f.name)}
	}
	switch f.vmm {
	case "", "qemu", "firecracker":
	default:
		return api.CreateParams{}, usageError{fmt.Errorf("--vmm %q: want qemu or firecracker", f.vmm)}
	}
	return api.CreateParams{Name: f.name, Image: f.image, VCPU: f.vcpu, MemoryMiB: f.memory, DiskSize: f.disk, VMM: f.vmm, Cold: f.cold}, nil
}

func newVMListCmd(f *factory) *cobra.Command {
	return newListCmd(f, "List VMs", (*client.Client).VMList,
		[]string{"NAME", "STATE", "IMAGE", "ADDRESS", "VCPU", "MEMORY", "AGE"},
		func(v api.VM) []string {
			return []string{v.Name, v.State, v.Image, v.IP, fmt.Sprint(v.VCPU),
				config.FormatSize(int64(v.MemoryMiB) << 20), age(v.CreatedAt)}
		})
}

func newVMShowCmd(f *factory) *cobra.Command {
	return newShowCmd(f, "Show one VM", "one VM name", (*client.Client).VMShow, func(v api.VM) [][2]string {
		rows := [][2]string{
			{"name", v.Name}, {"id", v.ID}, {"state", v.State}, {"image", v.Image}, {"kernel", v.Kernel},
			{"vmm", v.VMM}, {"vcpu", fmt.Sprint(v.VCPU)}, {"memory", config.FormatSize(int64(v.MemoryMiB) << 20)},
			{"disk", config.FormatSize(v.DiskBytes)}, {"address", v.IP}, {"mac", v.MAC},
			{"created", v.CreatedAt.Format(time.RFC3339)}, {"console log", v.ConsoleLog}, {"dir", v.Dir},
		}
		if v.Net != nil {
			rows = append(rows, [2]string{"network", netPolicyLine(v.Net)})
		}
		if v.PID != 0 {
			rows = append(rows, [2]string{"vmm pid", fmt.Sprint(v.PID)})
		}
		if v.StartedFrom != "" {
			rows = append(rows, [2]string{"started from", v.StartedFrom})
		}
		if v.Snapshots != 0 {
			rows = append(rows, [2]string{"snapshots", fmt.Sprintf("%d (%s)", v.Snapshots, config.FormatSize(v.SnapshotBytes))})
		}
		return append(rows, [2]string{"last error", strings.SplitN(v.LastError, "\n", 2)[0]})
	})
}

// simpleVMCmd builds stop/start/delete/restart: one name, one call (e.g.
// (*client.Client).VMStop).
func simpleVMCmd(f *factory, use, short string, call func(*client.Client, context.Context, string, func(api.Progress)) (api.VM, error), done string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			show, finish := progressPrinter(f.IO)
			v, err := call(f.Client, cmd.Context(), args[0], show)
			finish()
			if err != nil {
				return err
			}
			printf(f.IO.Out, "%s %s\n", v.Name, done)
			return nil
		},
	}
}

func newVMDeleteCmd(f *factory) *cobra.Command {
	c := simpleVMCmd(f, "delete", "Delete a VM and everything it stored", (*client.Client).VMDelete, "deleted")
	c.Aliases = []string{"rm"}
	c.Long = `Delete a VM: its VMM, disks, TAP and pinned host key. NAME is the exact
name or id; a prefix, which other vm commands accept, is refused here.`
	return c
}

func age(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
