package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/banger-dev/banger/internal/api"
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

// newShowCmd builds a `show NAME` command: one call to the daemon, --json
// for scripts, "key: value" lines for people (empty values are left out).
func newShowCmd[T any](env *Env, short, what, method string, rows func(T) [][2]string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: short,
		Args:  exactArgs(1, what),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v T
			if err := env.Client.Call(cmd.Context(), method, api.NameParams{Name: args[0]}, &v, nil); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Out, v)
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			for _, kv := range rows(v) {
				if kv[1] != "" {
					fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
