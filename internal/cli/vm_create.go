package cli

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
	"github.com/spf13/cobra"
)

// vmCreateOptions are `vm create`'s flags, checked, and what it needs.
type vmCreateOptions struct {
	IO     *iostreams
	Client interface {
		VMCreate(context.Context, api.CreateParams, func(api.Progress)) (api.VM, error)
	}

	Params api.CreateParams // sizes and name from the flags; WaitSSH set
	JSON   bool
}

// newVMCreateCmd builds `vm create`; runF, when set, runs instead of
// vmCreateRun (tests check the flags with it).
func newVMCreateCmd(f *factory, runF func(*vmCreateOptions) error) *cobra.Command {
	opts := &vmCreateOptions{IO: f.IO, Client: f.Client}
	var size sizeFlags
	var noWait bool
	var net netFlags
	cmd := &cobra.Command{
		Use:   "create [flags]",
		Short: "Create and boot a long-lived VM",
		Long: `Create a VM and boot it; returns when sshd in the guest answers, streaming
the stages (spec, reserve, disks, network, boot, agent, ssh). Interrupting
the CLI does not abort the create: the daemon finishes it (see vm show).

The VM keeps its root filesystem changes (overlay disk) and /root (work
disk) across stop and start; only 'vm delete' discards them.`,
		Example: "  banger vm create --name dev --vcpu 2 --memory 2G\n  ssh via: banger vm ssh dev\n" +
			"  banger vm create --name db --allow-out 10.1.2.0/24:5432   # the public internet and one private service\n" +
			"  banger vm create --name a --group web && banger vm create --name b --group web   # a and b reach each other",
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := size.params(cmd)
			if err != nil {
				return err
			}
			p.WaitSSH, p.NoWait = true, noWait
			if p.Net, err = net.policy(cmd); err != nil {
				return err
			}
			if err := net.ports(cmd, &p); err != nil {
				return err
			}
			opts.Params = p
			if runF != nil {
				return runF(opts)
			}
			return vmCreateRun(cmd.Context(), opts)
		},
	}
	size.register(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the VM as JSON")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the VM is reserved; the daemon boots it in the background")
	net.register(cmd.Flags(), true)
	completeNetMode(cmd)
	return cmd
}

// vmCreateRun creates the VM, showing the daemon's progress.
func vmCreateRun(ctx context.Context, opts *vmCreateOptions) error {
	show, done := progressPrinter(opts.IO)
	vm, err := opts.Client.VMCreate(ctx, opts.Params, show)
	done()
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, vm)
	}
	if opts.Params.NoWait {
		printf(opts.IO.Out, "%s reserved at %s; booting in the background (banger vm show %s)\n", vm.Name, vm.IP, vm.Name)
		return nil
	}
	printf(opts.IO.Out, "%s running at %s (banger vm ssh %s)\n", vm.Name, vm.IP, vm.Name)
	return nil
}
