package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/banger-dev/banger/internal/api"
)

// vm fork (issue 14).

// vmForkOptions are `vm fork`'s flags and what it needs.
type vmForkOptions struct {
	IO     *iostreams
	Client interface {
		VMFork(context.Context, api.ForkParams, func(api.Progress)) (api.ForkResult, error)
	}

	Params api.ForkParams
	JSON   bool
}

// newVMForkCmd builds `vm fork`; runF, when set, runs instead of vmForkRun.
func newVMForkCmd(f *factory, runF func(*vmForkOptions) error) *cobra.Command {
	opts := &vmForkOptions{IO: f.IO, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "fork NAME [--count N] [--name NAME] [--from SNAPSHOT] [--json]",
		Short: "Make running copies of a VM as of now, each with its own identity",
		Long: `Make running copies (children) of a running VM: every child continues from the
same instant as the VM — the same processes, open files, memory and disks —
and then gets its own identity: hostname and DNS name (<child>.vm), address
and MAC, SSH host key (pinned for ` + "`banger vm ssh`" + `), machine-id, a reseeded
RNG and the host's clock. The VM is paused only while its state is saved and
its disks are copied, then continues; a paused VM stays paused.

With --count N the children are NAME-fork-1 … NAME-fork-N, or P-1 … P-N with
--name P; one child (the default) with --name P is named exactly P.
--from SNAPSHOT forks one of the VM's snapshots instead of its present state
(the VM itself is not touched and may be stopped).

What a child changes in its files stays its own. ` + "`banger vm workspace export`" + ` of a
child is relative to the VM's workspace import, so it holds the parent's edits
before the fork and the child's after it.

Limits, checked before anything is made: at most 16 children, free addresses
in the VM subnet, the host's available memory (each child may use all of the
VM's memory) and disk space for the state and the disk copies. A failure
removes every child of the fork; the VM keeps running.`,
		Example: `  banger vm fork dev --count 3 --name try     # try-1, try-2, try-3
  banger vm fork dev --name exp               # one copy named exp
  banger vm fork dev --from before-upgrade --name old
  banger vm workspace export try-2 -o try-2.patch`,
		Args: exactArgs(1, "the name of the VM to fork"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Params.Name = args[0]
			if opts.Params.Count < 1 || opts.Params.Count > api.MaxForkCount {
				return usageError{fmt.Errorf("--count %d: a fork makes 1 to %d children (see `%s --help`)", opts.Params.Count, api.MaxForkCount, cmd.CommandPath())}
			}
			if n := opts.Params.As; n != "" && !dnsLabel.MatchString(n) {
				return usageError{fmt.Errorf("--name %q is not a DNS label: use lowercase letters, digits and '-', at most 63, not starting or ending with '-'", n)}
			}
			if runF != nil {
				return runF(opts)
			}
			return vmForkRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Params.Count, "count", "n", 1, fmt.Sprintf("how many children (1 to %d)", api.MaxForkCount))
	cmd.Flags().StringVar(&opts.Params.As, "name", "", "the child's name (one child), or the prefix of P-1 … P-N (default NAME-fork)")
	cmd.Flags().StringVar(&opts.Params.From, "from", "", "fork this snapshot of the VM instead of its present state")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result (parent, pause time, children) as JSON")
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeNames(cmd.Context(), f.Client, vmNames, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	_ = cmd.RegisterFlagCompletionFunc("from", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeNames(cmd.Context(), f.Client, snapshotNames(args[0]), toComplete), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func vmForkRun(ctx context.Context, opts *vmForkOptions) error {
	show, finish := progressPrinter(opts.IO) // on stderr: --json's stdout stays JSON
	res, err := opts.Client.VMFork(ctx, opts.Params, show)
	finish()
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, res)
	}
	t := newTable(opts.IO.Out)
	t.row("NAME", "STATE", "IP")
	for _, c := range res.Children {
		t.row(c.Name, c.State, c.IP)
	}
	if err := t.flush(); err != nil {
		return err
	}
	switch {
	case res.Snapshot != "":
		printf(opts.IO.Err, "forked from snapshot %s of %s\n", res.Snapshot, res.Parent)
	case res.PausedMillis > 0:
		printf(opts.IO.Err, "%s was paused for %d ms\n", res.Parent, res.PausedMillis)
	}
	return nil
}
