package cli

import (
	"context"
	"fmt"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// newListCmd builds an `ls` command: one call to the daemon (list, e.g.
// (*client.Client).VMList), --json for scripts, -q for names only (the
// first column), a table with the given columns for people.
func newListCmd[T any](f *factory, short string, list func(*client.Client, context.Context) ([]T, error), columns []string, row func(T) []string) *cobra.Command {
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   short,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && quiet {
				return usageError{fmt.Errorf("%s: give --json or -q, not both", verb(cmd))}
			}
			items, err := list(f.Client, cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if items == nil {
					items = []T{}
				}
				return printJSON(f.IO.Out, items)
			}
			if quiet {
				for _, it := range items {
					fmt.Fprintln(f.IO.Out, escCell(row(it)[0]))
				}
				return nil
			}
			t := newTable(f.IO.Out)
			t.row(columns...)
			for _, it := range items {
				t.row(row(it)...)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only, one per line")
	return cmd
}

// newShowCmd builds a `show NAME` command: one call to the daemon (show,
// e.g. (*client.Client).VMShow), --json for scripts, "key: value" lines
// for people (empty values are left out).
func newShowCmd[T any](f *factory, short, what string, show func(*client.Client, context.Context, string) (T, error), rows func(T) [][2]string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: short,
		Args:  exactArgs(1, what),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := show(f.Client, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(f.IO.Out, v)
			}
			t := newTable(f.IO.Out)
			for _, kv := range rows(v) {
				if kv[1] != "" {
					t.kv(kv[0], kv[1])
				}
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// newCatalogCmd lists the image or kernel catalog.
func newCatalogCmd(f *factory, catalog func(*client.Client, context.Context) (api.CatalogList, error), what string) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "catalog",
		Short: "List the " + what + " the catalog offers (built-in, or the config's)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := catalog(f.Client, cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(f.IO.Out, l)
			}
			printf(f.IO.Out, "catalog: %s\n", l.Source)
			t := newTable(f.IO.Out)
			t.row("NAME", "HERE", "FROM", "DESCRIPTION")
			for _, e := range l.Entries {
				from := e.URL + e.Ref
				switch {
				case e.Build != "":
					from = "build " + e.Build
				case from == "":
					from = "apt " + e.Package
				}
				t.row(e.Name, yesNo(e.Installed), from, e.Description)
			}
			return t.flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
