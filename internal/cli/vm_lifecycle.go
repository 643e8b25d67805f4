package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/spf13/cobra"
)

func newVMRestartCmd(f *factory) *cobra.Command {
	return simpleVMCmd(f, "restart", "Shut a VM down gracefully and boot it again", (*client.Client).VMRestart, "running")
}

// vmSetOptions are `vm set`'s flags, checked, and what it needs.
type vmSetOptions struct {
	IO     *iostreams
	Client interface {
		VMSet(context.Context, api.SetParams, func(api.Progress)) (api.VM, error)
	}

	Params api.SetParams // zero fields are left as they are
}

// newVMSetCmd builds `vm set`; runF, when set, runs instead of vmSetRun.
func newVMSetCmd(f *factory, runF func(*vmSetOptions) error) *cobra.Command {
	opts := &vmSetOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	mem := memoryValue{mib: &p.MemoryMiB}
	cmd := &cobra.Command{
		Use:   "set NAME [--vcpu N] [--memory SIZE] [--disk-size SIZE]",
		Short: "Change a stopped VM's vCPUs, memory or disk size",
		Long: `Change the size of a stopped VM; the guest sees the new sizes at its next
start. Disks only grow (both the overlay and the work disk, with their
filesystems); shrinking is refused.`,
		Example: "  banger vm stop dev && banger vm set dev --vcpu 4 --memory 4G --disk-size 20G && banger vm start dev",
		Args:    exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if !cmd.Flags().Changed("vcpu") && !cmd.Flags().Changed("memory") && !cmd.Flags().Changed("disk-size") {
				return usageError{fmt.Errorf("vm set: give at least one of --vcpu, --memory, --disk-size")}
			}
			if cmd.Flags().Changed("vcpu") && p.VCPU < 1 {
				return usageError{fmt.Errorf("--vcpu %d: must be at least 1", p.VCPU)}
			}
			if cmd.Flags().Changed("memory") {
				if err := mem.check(); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return vmSetRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&p.VCPU, "vcpu", 0, "virtual CPUs")
	cmd.Flags().Var(&mem, "memory", "memory: 4G, 1.5G, 512M or plain MiB")
	cmd.Flags().Var(diskValue{&p.DiskSize}, "disk-size", "new disk size, e.g. 20G (grow only)")
	return cmd
}

// vmSetRun resizes the VM and prints its new sizes.
func vmSetRun(ctx context.Context, opts *vmSetOptions) error {
	show, done := progressPrinter(opts.IO)
	v, err := opts.Client.VMSet(ctx, opts.Params, show)
	done()
	if err != nil {
		return err
	}
	printf(opts.IO.Out, "%s: %s\n", v.Name, config.Spec{VCPU: v.VCPU, MemoryMiB: v.MemoryMiB, DiskBytes: v.DiskBytes})
	return nil
}

func newVMStatsCmd(f *factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats NAME",
		Short: "Show a running VM's CPU, memory, disk use and uptime (from the guest agent)",
		Args:  exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.Client.VMStats(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(f.IO.Out, s)
			}
			tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "uptime:\t%s\n", (time.Duration(s.UptimeSeconds) * time.Second).String())
			fmt.Fprintf(tw, "cpu:\t%.1f%% of %d vCPU (load %.2f)\n", s.CPUPercent, s.CPUs, s.Load1)
			fmt.Fprintf(tw, "memory:\t%s used of %s\n", config.FormatSize(int64(s.MemUsedBytes)), config.FormatSize(int64(s.MemTotalBytes)))
			fmt.Fprintf(tw, "work disk (/root):\t%s used of %s\n", config.FormatSize(int64(s.WorkDiskUsed)), config.FormatSize(int64(s.WorkDiskBytes)))
			fmt.Fprintf(tw, "root overlay:\t%s used of %s\n", config.FormatSize(int64(s.RootDiskUsed)), config.FormatSize(int64(s.RootDiskBytes)))
			fmt.Fprintf(tw, "sampled:\t%s ago\n", time.Since(s.SampledAt).Round(time.Second))
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newVMPortsCmd(f *factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ports NAME",
		Short: "List the TCP/UDP ports listening in a running VM, with their processes",
		Args:  exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ports, err := f.Client.VMPorts(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(f.IO.Out, ports)
			}
			t := newTable(f.IO.Out)
			t.row("PROTO", "ADDRESS", "PORT", "PROCESS")
			for _, p := range ports {
				proc := p.Process
				if p.PID != 0 {
					proc = fmt.Sprintf("%s (%d)", p.Process, p.PID)
				}
				t.row(p.Proto, p.Address, fmt.Sprint(p.Port), proc)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
