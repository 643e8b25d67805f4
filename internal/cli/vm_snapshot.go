package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/spf13/cobra"
)

// vm pause/resume, vm stop [--save], vm start [--cold] and vm snapshot
// (issue 13).

func newVMPauseCmd(f *factory) *cobra.Command {
	c := simpleVMCmd(f, "pause", "Stop a running VM's vCPUs (memory, processes and network stay)", (*client.Client).VMPause, "paused")
	c.Long = `Stop a running VM's virtual CPUs at once: nothing in the guest runs, but its
memory, processes, disks and network stay as they are, and ` + "`banger vm resume`" + `
continues it (setting the guest's clock, which stood still). Pausing a paused
VM does nothing.`
	return c
}

func newVMResumeCmd(f *factory) *cobra.Command {
	c := simpleVMCmd(f, "resume", "Continue a paused VM", (*client.Client).VMResume, "running")
	c.Long = `Continue a paused VM's vCPUs and set the guest's clock to the host's. Resuming
a running VM does nothing; a saved VM (vm stop --save) continues with
` + "`banger vm start`" + `.`
	return c
}

// vmStopOptions are `vm stop`'s flags and what it needs.
type vmStopOptions struct {
	IO     *iostreams
	Client interface {
		VMStop(context.Context, string, func(api.Progress)) (api.VM, error)
		VMStopSave(context.Context, string, func(api.Progress)) (api.VM, error)
	}

	Name string
	Save bool
}

// newVMStopCmd builds `vm stop`; runF, when set, runs instead of vmStopRun.
func newVMStopCmd(f *factory, runF func(*vmStopOptions) error) *cobra.Command {
	opts := &vmStopOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "stop NAME [--save]",
		Short: "Shut a VM down (its disks are kept), or save its whole state",
		Long: `Shut a VM down gracefully (its agent, then ACPI, then a kill); its disks are
kept and ` + "`banger vm start`" + ` boots it again.

With --save the VM is not shut down: it is paused, its memory and device state
are written to its directory, and its VMM ends, freeing its CPU, memory and
network. Its state is then "saved", and ` + "`banger vm start`" + ` continues it where it
was (the same processes, the same PIDs); ` + "`banger vm start --cold`" + ` boots it from
its disks instead. A save that fails (a full disk) leaves the VM running.`,
		Example: "  banger vm stop --save dev && banger vm start dev",
		Args:    exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return vmStopRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Save, "save", false, "save the VM's memory and devices to disk; vm start continues it")
	return cmd
}

func vmStopRun(ctx context.Context, opts *vmStopOptions) error {
	stop, done := opts.Client.VMStop, "stopped"
	if opts.Save {
		stop, done = opts.Client.VMStopSave, "saved (`banger vm start "+opts.Name+"` continues it)"
	}
	show, finish := progressPrinter(opts.IO)
	v, err := stop(ctx, opts.Name, show)
	finish()
	if err != nil {
		return err
	}
	printf(opts.IO.Out, "%s %s\n", v.Name, done)
	return nil
}

// vmStartOptions are `vm start`'s flags and what it needs.
type vmStartOptions struct {
	IO     *iostreams
	Client interface {
		VMStart(context.Context, string, func(api.Progress)) (api.VM, error)
		VMStartCold(context.Context, string, func(api.Progress)) (api.VM, error)
	}

	Name string
	Cold bool
}

// newVMStartCmd builds `vm start`; runF, when set, runs instead of vmStartRun.
func newVMStartCmd(f *factory, runF func(*vmStartOptions) error) *cobra.Command {
	opts := &vmStartOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "start NAME [--cold]",
		Short: "Boot a stopped VM, or continue a saved one",
		Long: `Boot a stopped VM from its disks. A saved VM (` + "`banger vm stop --save`" + `) continues
where it was saved instead; its saved state is used once. --cold boots a saved
VM from its disks, discarding its saved state (for a state that cannot be
loaded any more).`,
		Args: exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return vmStartRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Cold, "cold", false, "boot from the disks, discarding a saved state")
	return cmd
}

func vmStartRun(ctx context.Context, opts *vmStartOptions) error {
	start := opts.Client.VMStart
	if opts.Cold {
		start = opts.Client.VMStartCold
	}
	show, finish := progressPrinter(opts.IO)
	v, err := start(ctx, opts.Name, show)
	finish()
	if err != nil {
		return err
	}
	printf(opts.IO.Out, "%s running\n", v.Name)
	return nil
}

func newVMSnapshotCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Snapshot a VM (memory, processes, disks) and take it back to a snapshot",
		Long: `A snapshot is a VM's memory, devices and writable disks at one instant, kept in
the VM's directory. Creating one pauses the VM only while its state is written
and its disks copied (sparse: only the blocks in use); restoring one takes the
VM back to that instant, processes and files included. Snapshots go with the
VM: ` + "`banger vm delete`" + ` removes them.`,
	}
	cmd.AddCommand(newVMSnapshotCreateCmd(f, nil), newVMSnapshotListCmd(f, nil), newVMSnapshotRestoreCmd(f, nil), newVMSnapshotRmCmd(f, nil))
	return cmd
}

// vmSnapshotOptions are the flags and arguments of `vm snapshot create`,
// `restore` and `rm`, and what they need.
type vmSnapshotOptions struct {
	IO     *iostreams
	Client interface {
		VMSnapshotCreate(context.Context, api.SnapshotParams, func(api.Progress)) (api.Snapshot, error)
		VMSnapshotRestore(context.Context, api.SnapshotParams, func(api.Progress)) (api.VM, error)
		VMSnapshotDelete(context.Context, api.SnapshotParams) (api.Snapshot, error)
	}

	Params api.SnapshotParams
	JSON   bool
}

func snapshotArgs(min int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > 2 {
			what := "a VM name and a snapshot name"
			if min == 1 {
				what = "a VM name and, optionally, a snapshot name"
			}
			return usageError{fmt.Errorf("%s: expected %s (see `%s --help`)", verb(cmd), what, cmd.CommandPath())}
		}
		if len(args) == 2 && !dnsLabel.MatchString(args[1]) {
			return usageError{fmt.Errorf("snapshot name %q is not a DNS label: use lowercase letters, digits and '-', at most 63, not starting or ending with '-'", args[1])}
		}
		return nil
	}
}

func newVMSnapshotCreateCmd(f *factory, runF func(*vmSnapshotOptions) error) *cobra.Command {
	opts := &vmSnapshotOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "create NAME [SNAPSHOT]",
		Short: "Snapshot a running or paused VM (it keeps running)",
		Long: `Snapshot a running or paused VM: its memory, devices and writable disks at one
instant. A running VM is paused only for the copy, then continues (its clock
set); a paused one stays paused. SNAPSHOT is a DNS label, unique for the VM;
the default is the time (20261203-141500). A stopped VM has no memory to
snapshot: start it first, or keep its disks with ` + "`banger image promote`" + `.`,
		Example: "  banger vm snapshot create dev before-upgrade",
		Args:    snapshotArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Params.Name = args[0]
			if len(args) == 2 {
				opts.Params.Snapshot = args[1]
			}
			if runF != nil {
				return runF(opts)
			}
			show, finish := progressPrinter(opts.IO)
			sn, err := opts.Client.VMSnapshotCreate(cmd.Context(), opts.Params, show)
			finish()
			if err != nil {
				return err
			}
			if opts.JSON {
				return printJSON(opts.IO.Out, sn)
			}
			printf(opts.IO.Out, "%s: snapshot %s (%s)\n", sn.VM, sn.Name, config.FormatSize(sn.Bytes))
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the snapshot as JSON")
	return cmd
}

// vmSnapshotListOptions are `vm snapshot ls`'s.
type vmSnapshotListOptions struct {
	IO     *iostreams
	Client interface {
		VMSnapshotList(context.Context, string) ([]api.Snapshot, error)
	}
	Name string
	JSON bool
}

func newVMSnapshotListCmd(f *factory, runF func(*vmSnapshotListOptions) error) *cobra.Command {
	opts := &vmSnapshotListOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "ls NAME [--json]",
		Aliases: []string{"list"},
		Short:   "List a VM's snapshots",
		Args:    exactArgs(1, "one VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			list, err := opts.Client.VMSnapshotList(cmd.Context(), opts.Name)
			if err != nil {
				return err
			}
			if opts.JSON {
				return printJSON(opts.IO.Out, list)
			}
			t := newTable(opts.IO.Out)
			t.row("NAME", "CREATED", "SIZE", "VMM", "BANGER")
			for _, sn := range list {
				t.row(sn.Name, sn.CreatedAt.Local().Format(time.DateTime), config.FormatSize(sn.Bytes),
					sn.VMM+" "+sn.VMMVersion, sn.BangerVersion)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func newVMSnapshotRestoreCmd(f *factory, runF func(*vmSnapshotOptions) error) *cobra.Command {
	opts := &vmSnapshotOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "restore NAME SNAPSHOT [--force]",
		Short: "Take a VM back to a snapshot: memory, processes, disks",
		Long: `Take a VM back to a snapshot: its disks are replaced by the snapshot's copies
and it continues from the snapshot's memory (its clock set, its random number
generator reseeded). The snapshot stays and can be restored again.

A running, paused or saved VM is refused: its current state would be lost.
--force ends it first, at once (no graceful shutdown: its memory and disks are
about to be replaced). Snapshot it first to keep it.`,
		Example: "  banger vm snapshot restore --force dev before-upgrade",
		Args:    snapshotArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Params.Name, opts.Params.Snapshot = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			show, finish := progressPrinter(opts.IO)
			v, err := opts.Client.VMSnapshotRestore(cmd.Context(), opts.Params, show)
			finish()
			if err != nil {
				return err
			}
			printf(opts.IO.Out, "%s restored to %s, running\n", v.Name, opts.Params.Snapshot)
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Params.Force, "force", false, "end a running, paused or saved VM first (its current state is lost)")
	return cmd
}

func newVMSnapshotRmCmd(f *factory, runF func(*vmSnapshotOptions) error) *cobra.Command {
	opts := &vmSnapshotOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:     "rm NAME SNAPSHOT",
		Aliases: []string{"delete"},
		Short:   "Remove one of a VM's snapshots",
		Args:    snapshotArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Params.Name, opts.Params.Snapshot = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			sn, err := opts.Client.VMSnapshotDelete(cmd.Context(), opts.Params)
			if err != nil {
				return err
			}
			printf(opts.IO.Out, "%s: snapshot %s removed (%s freed)\n", sn.VM, sn.Name, config.FormatSize(sn.Bytes))
			return nil
		},
	}
	return cmd
}
