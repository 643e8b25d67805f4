package cli

import (
	"errors"
	"fmt"
	"strings"

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
	if s := suggest(cmd, name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{fmt.Errorf("%s (see `%s --help`)", msg, cmd.CommandPath())}
}

// suggest names the subcommands closest to a mistyped one: those it is
// a prefix of, else those at the smallest edit distance (at most 2).
func suggest(cmd *cobra.Command, typed string) []string {
	var prefixed, near []string
	best := 3
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		d := best + 1
		for _, n := range append([]string{c.Name()}, c.Aliases...) {
			if strings.HasPrefix(n, typed) {
				prefixed = append(prefixed, c.Name())
			}
			d = min(d, editDistance(typed, n))
		}
		switch {
		case d < best:
			best, near = d, []string{c.Name()}
		case d == best:
			near = append(near, c.Name())
		}
	}
	if len(prefixed) > 0 {
		return prefixed
	}
	return near
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
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
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return ExitUsage
	}
	return ExitError
}
