package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/banger-dev/banger/internal/api"
	"github.com/spf13/cobra"
)

func newNetworkCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "List or remove everything banger added to the host's network",
		Long: `banger adds to the host only: a bridge with the gateway address (and its
route), a TAP per running VM plus a small pool of ready ones, the nftables
table "banger" (guest NAT, guests' DNS on port 53 of the gateway), IPv4
forwarding when it was off, systemd-resolved routing of .vm where resolved
runs, and its DNS server on the gateway. All of it is set up when the first
VM starts.`,
	}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "List every host network object banger created",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.Client.NetworkShow(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(f.IO.Out, st)
			}
			dns := st.DNS
			if dns == "" {
				dns = "not listening"
			}
			fmt.Fprintf(f.IO.Out, "bridge %s · subnet %s · gateway %s · dns %s\n", st.Bridge, st.Subnet, st.Gateway, dns)
			if len(st.Objects) == 0 {
				fmt.Fprintln(f.IO.Out, "banger has nothing on this host's network (the first VM start sets it up)")
				return nil
			}
			printObjects(f, st.Objects)
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	teardown := &cobra.Command{
		Use:   "teardown",
		Short: "Remove everything banger added to the host's network (no VM may be running)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := f.Client.NetworkTeardown(cmd.Context())
			if err != nil {
				return err
			}
			if len(res.Removed) == 0 {
				fmt.Fprintln(f.IO.Out, "nothing to remove")
			} else {
				fmt.Fprintf(f.IO.Out, "removed %d objects:\n", len(res.Removed))
				printObjects(f, res.Removed)
			}
			if len(res.Left) > 0 {
				fmt.Fprintf(f.IO.Out, "could not remove %d objects:\n", len(res.Left))
				printObjects(f, res.Left)
				return exitError{ExitError}
			}
			return nil
		},
	}
	cmd.AddCommand(show, teardown)
	return cmd
}

func printObjects(f *factory, objs []api.NetworkObject) {
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tDETAIL")
	for _, o := range objs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Kind, o.Name, o.Detail)
	}
	tw.Flush()
}
