package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// newListCmd builds an `ls` command: one call to the daemon, --json for
// scripts, a table with the given columns for people.
func newListCmd[T any](env *Env, short, method string, columns []string, row func(T) []string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   short,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var items []T
			if err := env.Client.Call(cmd.Context(), method, nil, &items, nil); err != nil {
				return err
			}
			if asJSON {
				if items == nil {
					items = []T{}
				}
				return printJSON(env.Out, items)
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, strings.Join(columns, "\t"))
			for _, it := range items {
				fmt.Fprintln(tw, strings.Join(row(it), "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
