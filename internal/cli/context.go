package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// contextOptions are the `context` commands' flags and what they need.
type contextOptions struct {
	IO        *iostreams
	ConfigDir string

	Host, Description string
	JSON, Force       bool
}

// contextView is one context as `context ls --json` prints it.
type contextView struct {
	Name        string `json:"name"`
	Host        string `json:"host"` // "" for default: this machine
	Description string `json:"description,omitempty"`
	Current     bool   `json:"current"`
}

// newContextCmd builds `context` and its subcommands; runF, when set,
// runs instead of contextRun (with the subcommand's name).
func newContextCmd(f *factory, runF func(string, *contextOptions, []string) error) *cobra.Command {
	opts := &contextOptions{IO: f.IO, ConfigDir: f.Paths.ConfigDir}
	run := func(verb string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(verb, opts, args)
			}
			return contextRun(verb, opts, args)
		}
	}
	complete := func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cf, _ := loadContexts(opts.ConfigDir)
		var out []cobra.Completion
		for _, n := range cf.names() {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	cmd := &cobra.Command{
		Use:   "context",
		Short: "Name remote hosts and choose which one commands go to",
		Long: `A context names a banger host reached over SSH. Commands go to, in order:
--host, else BANGER_HOST, else the current context, else this machine
("default"). Contexts are kept in ` + "`contexts.json`" + ` in banger's config directory.`,
		Example: "  banger context create box --host ssh://me@box\n  banger context use box && banger vm ls\n  banger context use default",
	}
	create := &cobra.Command{
		Use:   "create NAME --host ssh://[user@]host[:port]",
		Short: "Name a remote host",
		Args:  exactArgs(1, "a context name"),
		RunE:  run("create"),
	}
	create.Flags().StringVar(&opts.Host, "host", "", "the remote host: ssh://[user@]host[:port]")
	create.Flags().StringVar(&opts.Description, "description", "", "a note shown by `context ls`")
	use := &cobra.Command{
		Use:               "use NAME",
		Short:             "Send commands to this context from now on (default: this machine)",
		Args:              exactArgs(1, "a context name"),
		RunE:              run("use"),
		ValidArgsFunction: complete,
	}
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List contexts; the current one is marked *",
		Args:    exactArgs(0, "no arguments"),
		RunE:    run("ls"),
	}
	ls.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	rm := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Forget contexts (their remote hosts are not touched)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("context rm: expected one or more context names (see `banger context rm --help`)")}
			}
			return nil
		},
		RunE:              run("rm"),
		ValidArgsFunction: complete,
	}
	rm.Flags().BoolVarP(&opts.Force, "force", "f", false, "remove the current context too (commands then go to this machine)")
	cmd.AddCommand(create, use, ls, rm)
	for _, c := range cmd.Commands() {
		c.Annotations = map[string]string{annotLocal: "true"}
	}
	return cmd
}

// contextRun runs one context subcommand.
func contextRun(verb string, opts *contextOptions, args []string) error {
	cf, err := loadContexts(opts.ConfigDir)
	if err != nil {
		return err
	}
	switch verb {
	case "create":
		name := args[0]
		if err := checkContextName(name); err != nil {
			return err
		}
		if opts.Host == "" {
			return usageError{fmt.Errorf("context create: --host ssh://[user@]host[:port] is required")}
		}
		if _, err := client.ParseHost(opts.Host); err != nil {
			return usageError{err}
		}
		if _, ok := cf.Contexts[name]; ok {
			return fmt.Errorf("context %s already exists (remove it first with `banger context rm %s`)", name, name)
		}
		if cf.Contexts == nil {
			cf.Contexts = map[string]contextEntry{}
		}
		cf.Contexts[name] = contextEntry{Host: opts.Host, Description: opts.Description}
		if err := saveContexts(opts.ConfigDir, cf); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "created context %s (%s); use it with `banger context use %s`\n", name, opts.Host, name)
	case "use":
		name := args[0]
		if _, ok := cf.Contexts[name]; !ok && name != defaultContext {
			return fmt.Errorf("no context %q (have: %s)", name, strings.Join(cf.names(), ", "))
		}
		cf.Current = name
		if name == defaultContext {
			cf.Current = ""
		}
		if err := saveContexts(opts.ConfigDir, cf); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "now using context %s\n", name)
		if h := os.Getenv("BANGER_HOST"); h != "" {
			fmt.Fprintf(opts.IO.Err, "banger: note: BANGER_HOST=%s is set and goes before the context\n", escText(h))
		}
	case "ls":
		return contextList(opts, cf)
	case "rm":
		for _, name := range args {
			if _, ok := cf.Contexts[name]; !ok {
				return fmt.Errorf("no context %q (have: %s)", name, strings.Join(cf.names(), ", "))
			}
			if name == cf.current() && !opts.Force {
				return fmt.Errorf("context %s is the current one: `banger context use default` first, or rm --force", name)
			}
		}
		for _, name := range args {
			delete(cf.Contexts, name)
			if name == cf.Current {
				cf.Current = ""
			}
		}
		if err := saveContexts(opts.ConfigDir, cf); err != nil {
			return err
		}
		for _, name := range args {
			fmt.Fprintln(opts.IO.Out, "removed context", name)
		}
	}
	return nil
}

func checkContextName(name string) error {
	if name == defaultContext {
		return usageError{fmt.Errorf("context create: %q is this machine and always exists", defaultContext)}
	}
	if !contextName.MatchString(name) {
		return usageError{fmt.Errorf("context create: bad name %q: letters, digits, '_', '.', '-', starting with a letter or digit", name)}
	}
	return nil
}

func contextList(opts *contextOptions, cf contextFile) error {
	views := make([]contextView, 0, len(cf.Contexts)+1)
	for _, n := range cf.names() {
		e := cf.Contexts[n]
		if n == defaultContext {
			e.Description = "this machine's daemon"
		}
		views = append(views, contextView{Name: n, Host: e.Host, Description: e.Description, Current: n == cf.current()})
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, views)
	}
	t := newTable(opts.IO.Out)
	t.row("NAME", "HOST", "DESCRIPTION")
	for _, v := range views {
		name := v.Name
		if v.Current {
			name += " *"
		}
		host := v.Host
		if host == "" {
			host = "(local)"
		}
		t.row(name, host, v.Description)
	}
	return t.flush()
}
