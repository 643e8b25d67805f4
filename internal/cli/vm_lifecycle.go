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
		VMSetNet(context.Context, api.SetNetParams, func(api.Progress)) (api.VM, error)
	}

	Params api.SetParams // zero fields are left as they are
	// Net is the network policy change (--net, --allow-out, --deny-out),
	// nil when none was asked for.
	Net *api.SetNetParams
}

// newVMSetCmd builds `vm set`; runF, when set, runs instead of vmSetRun.
func newVMSetCmd(f *factory, runF func(*vmSetOptions) error) *cobra.Command {
	opts := &vmSetOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	mem := memoryValue{mib: &p.MemoryMiB}
	var net netFlags
	cmd := &cobra.Command{
		Use:   "set NAME [--vcpu N] [--memory SIZE] [--disk-size SIZE] [--net MODE] [--allow-out RULE]... [--deny-out RULE]...",
		Short: "Change a stopped VM's vCPUs, memory or disk size, or any VM's network policy",
		Long: `Change the size of a stopped VM; the guest sees the new sizes at its next
start. Disks only grow (both the overlay and the work disk, with their
filesystems); shrinking is refused.

--net, --allow-out and --deny-out change the VM's network policy, also
while it runs: new connections follow the new policy at once (established
ones continue). --allow-out/--deny-out replace the VM's list; give
--allow-out '' to empty it. vm show prints the policy.`,
		Example: "  banger vm stop dev && banger vm set dev --vcpu 4 --memory 4G --disk-size 20G && banger vm start dev\n" +
			"  banger vm set dev --net isolated                 # on a running VM: nothing leaves from now on\n" +
			"  banger vm set dev --net nat --deny-out 203.0.113.0/24",
		Args: exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			sized := cmd.Flags().Changed("vcpu") || cmd.Flags().Changed("memory") || cmd.Flags().Changed("disk-size")
			if net.changed(cmd) {
				np, err := net.setParams(cmd, args[0])
				if err != nil {
					return err
				}
				opts.Net = &np
			}
			if !sized && opts.Net == nil {
				return usageError{fmt.Errorf("vm set: give at least one of --vcpu, --memory, --disk-size, --net, --allow-out, --deny-out")}
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
	net.register(cmd.Flags(), false)
	completeNetMode(cmd)
	return cmd
}

// vmSetRun resizes the VM and prints its new sizes.
func vmSetRun(ctx context.Context, opts *vmSetOptions) error {
	show, done := progressPrinter(opts.IO)
	defer done()
	if opts.Net != nil {
		v, err := opts.Client.VMSetNet(ctx, *opts.Net, show)
		if err != nil {
			return err
		}
		printf(opts.IO.Out, "%s: network %s\n", v.Name, netPolicyLine(v.Net))
	}
	p := opts.Params
	if p.VCPU == 0 && p.MemoryMiB == 0 && p.DiskSize == "" {
		return nil
	}
	v, err := opts.Client.VMSet(ctx, p, show)
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
