package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/banger-dev/banger/internal/suggest"
	"github.com/spf13/cobra"
)

// finishTree makes usage errors uniform across every command, including
// those registered from other files: an unknown subcommand is an error
// with a suggestion (cobra would print the group's help and exit 0), and
// every argument validator's error is a usage error (exit 2).
func finishTree(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = groupRun
	}
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			var ue usageError
			if err != nil && !errors.As(err, &ue) {
				err = usageError{err}
			}
			return err
		}
	}
	for _, s := range c.Commands() {
		finishTree(s)
	}
}

// strictHelp makes `banger help TOPIC` refuse an unknown topic like an
// unknown command (cobra's prints "Unknown help topic" and exits 0).
func strictHelp(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, h := range root.Commands() {
		if h.Name() != "help" {
			continue
		}
		h.Run = nil
		h.RunE = func(_ *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			switch {
			case err != nil || cmd == nil:
				return unknownCommand(root, strings.Join(args, " "))
			case len(rest) > 0:
				return unknownCommand(cmd, rest[0])
			}
			return cmd.Help()
		}
	}
}

// groupRun runs a command that only groups others: without arguments it
// shows its help; anything else is an unknown subcommand.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return unknownCommand(cmd, args[0])
}

// unknownCommand is `banger vm lst`: a usage error that suggests ls.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := suggestCommands(cmd, name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{fmt.Errorf("%s (see `%s --help`)", msg, cmd.CommandPath())}
}

// suggestCommands names the subcommands closest to a mistyped one (aliases
// count, the command's name is offered).
func suggestCommands(cmd *cobra.Command, typed string) []string {
	var names []string
	canonical := map[string]string{}
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		for _, n := range append([]string{c.Name()}, c.Aliases...) {
			names = append(names, n)
			canonical[n] = c.Name()
		}
	}
	return suggest.Closest(typed, names, func(n string) string { return canonical[n] })
}

// flagError turns a flag parsing error into a usage error; on a group
// with a word before the bad flag (`banger vm lst --json`), the word is
// what went wrong.
func flagError(c *cobra.Command, err error) error {
	if c.HasSubCommands() && len(c.Flags().Args()) > 0 {
		return unknownCommand(c, c.Flags().Args()[0])
	}
	return usageError{fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath())}
}

// exitCode maps a command's error to banger's exit code: usage errors
// (bad flags, arguments, sizes or names, found before anything is asked
// of the daemon) exit 2, every other failure 1.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitError
}

// verb is a command's path without "banger " ("vm logs"), to begin an
// error that Run prints after "banger: ".
func verb(c *cobra.Command) string {
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}
