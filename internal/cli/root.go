// Package cli is the banger command line: one file per noun, each command
// an options struct, a constructor and a run function. It talks to the
// daemon only through internal/client and renders results for people
// (tables, progress) or scripts (--json).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/spf13/cobra"
)

// Exit codes of banger itself. `vm run` exits with the guest command's
// code, and with ExitRunFailed when banger could not run it.
const (
	ExitOK        = 0
	ExitError     = 1
	ExitUsage     = 2
	ExitRunFailed = 125
	ExitInterrupt = 130
)

// exitError carries an exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Env is the outside world as Main or a test gives it; commands get it
// through a factory (factory.go).
type Env struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	Paths  config.Paths
	Client *client.Client
}

// Main runs banger with os.Args and returns the exit code.
func Main() int {
	paths, err := config.DefaultPaths()
	if err != nil {
		fmt.Fprintln(os.Stderr, "banger:", err)
		return ExitError
	}
	env := &Env{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Paths: paths,
		Client: &client.Client{Paths: paths, AutoStart: true}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	return Run(ctx, env, os.Args[1:])
}

// Run executes one command line.
func Run(ctx context.Context, env *Env, args []string) int {
	root := newRootCmd(newFactory(env))
	root.SetArgs(args)
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(env.Err, "banger:", escText(friendly(err)))
	return exitCode(err)
}

// usageError marks bad flags or arguments.
type usageError struct{ error }

// friendly adds hints for errors users meet often.
func friendly(err error) string {
	if errors.Is(err, client.ErrNotRunning) {
		return err.Error() + " (start it with `banger daemon start`)"
	}
	return err.Error()
}

// newRootCmd is the command tree; every command is listed here or in its
// group's constructor (newVMCmd, newImageCmd, ...), none registers itself.
func newRootCmd(f *factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "banger",
		Short: "Disposable and long-lived Linux microVMs on your own machine",
		Long: `banger runs Linux sandboxes as real virtual machines, as easily as containers.

  banger vm run --rm -- uname -a      fresh VM, run, print, exit code, gone
  banger vm create --name dev         a long-lived VM
  banger vm ssh dev                   OpenSSH into it
  banger doctor                       check this host

The daemon (bangerd) starts on demand.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(newVMCmd(f), newDaemonCmd(f), newImageCmd(f), newKernelCmd(f), newDoctorCmd(f, nil),
		newNetworkCmd(f), newSSHConfigCmd(f, nil), newVersionCmd(f), newAPICmd(f))
	root.SetOut(f.IO.Out) // cobra's completion command takes its writer now
	root.InitDefaultCompletionCmd()
	strictHelp(root)
	finishTree(root)
	addCompletions(f.Client, root)
	showVersion := root.Flags().Bool("version", false, "print the versions of banger, bangerd and banger-agent (as `banger version`)")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if *showVersion {
			if len(args) > 0 {
				return usageError{fmt.Errorf("--version takes no arguments")}
			}
			return printVersion(cmd.Context(), f, false)
		}
		return groupRun(cmd, args)
	}
	return root
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progressPrinter renders progress events: a rewritten status line on a
// terminal, plain lines otherwise. The spec line is always kept.
func progressPrinter(ios *iostreams) (func(api.Progress), func()) {
	tty := ios.isStderrTTY()
	active := false
	show := func(p api.Progress) {
		// The spec line and warnings stay on screen; other stages replace
		// each other on a terminal.
		if p.Stage == api.StageSpec || strings.HasPrefix(p.Message, "warning: ") {
			if active {
				fmt.Fprint(ios.Err, "\r\033[K")
				active = false
			}
			if p.Stage == api.StageSpec {
				fmt.Fprintln(ios.Err, "spec:", escCell(p.Message))
			} else {
				fmt.Fprintf(ios.Err, "%s: %s\n", escCell(p.Stage), escText(p.Message))
			}
			return
		}
		line := fmt.Sprintf("[%5.1fs] %s: %s", p.Elapsed, escCell(p.Stage), escCell(p.Message))
		if tty {
			fmt.Fprint(ios.Err, "\r\033[K"+line)
			active = true
			return
		}
		fmt.Fprintln(ios.Err, line)
	}
	done := func() {
		if active {
			fmt.Fprint(ios.Err, "\r\033[K")
			active = false
		}
	}
	return show, done
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s: expected %s (see `%s --help`)", verb(cmd), what, cmd.CommandPath())}
		}
		return nil
	}
}
