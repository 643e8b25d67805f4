package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
)

// commandFlags are how a guest command runs, shared by vm run and vm exec.
type commandFlags struct {
	env           []string
	workdir, user string
	tty           bool
}

func (f *commandFlags) register(fs *pflag.FlagSet, workdirDefault string) {
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set KEY=VALUE in the command's environment, over the image's (repeatable); KEY alone passes the host's value of KEY, if set")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "directory to run the command in (default: "+workdirDefault+")")
	fs.StringVarP(&f.user, "user", "u", "", "guest user to run the command as: name or uid, optionally :group or :gid (default: the image's, else root)")
	fs.BoolVarP(&f.tty, "tty", "t", false, "give the command a terminal (for shells and other interactive programs); keys, Ctrl-C included, go to it")
}

// terminal is the -t terminal size and the environment to send with it.
func (f *commandFlags) terminal(ios *iostreams) (*api.WinSize, []string) {
	vars := hostEnv(f.env)
	if !f.tty {
		return nil, vars
	}
	return terminalFor(ios, vars)
}

// hostEnv completes -e values as `docker run -e` does: KEY=VALUE as
// given, a bare KEY takes the host's value of KEY, and a KEY the host
// does not have set is left out.
func hostEnv(vars []string) []string {
	var out []string
	for _, v := range vars {
		if strings.Contains(v, "=") {
			out = append(out, v)
		} else if val, ok := os.LookupEnv(v); ok {
			out = append(out, v+"="+val)
		}
	}
	return out
}

// checkEnv refuses -e values with no name ("=x", "").
func (f *commandFlags) checkEnv() error {
	for _, v := range f.env {
		if k, _, _ := strings.Cut(v, "="); k == "" {
			return usageError{fmt.Errorf("-e %q: want KEY=VALUE or KEY (the host's value)", v)}
		}
	}
	return nil
}

// vmExecOptions are `vm exec`'s flags and arguments, checked, and what it
// needs.
type vmExecOptions struct {
	IO     *iostreams
	Client interface {
		VMExec(context.Context, api.ExecParams, func(api.Progress)) (*client.Stream, api.VM, error)
	}

	Params api.ExecParams
}

// newVMExecCmd builds `vm exec`; runF, when set, runs instead of vmExecRun.
func newVMExecCmd(f *factory, runF func(*vmExecOptions) error) *cobra.Command {
	opts := &vmExecOptions{IO: f.IO, Client: f.Client}
	var c commandFlags
	cmd := &cobra.Command{
		Use:   "exec NAME [flags] -- CMD [ARGS...]",
		Short: "Run a command in a running VM through the guest agent (no SSH needed)",
		Long: `Run CMD in a running VM through banger's guest agent, stream its output and
exit with its exit code, as vm run does for a fresh VM. It needs no sshd in
the guest, so it is the way into VMs of container images. Ctrl-C goes to
the command; a second Ctrl-C ends it. The image's environment and working
directory apply as for vm run.`,
		Example: "  banger vm exec dev -- uname -a\n  banger vm exec dev -t -- bash          # an interactive shell, no sshd needed\n" +
			"  banger vm exec dev -e DEBUG=1 -e GITHUB_TOKEN -w /srv -- ./serve --check   # GITHUB_TOKEN: the host's value",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usageError{fmt.Errorf("vm exec: expected a VM name (see `banger vm exec --help`)")}
			}
			if len(args) < 2 {
				return usageError{fmt.Errorf("vm exec: no command given: banger vm exec %s -- CMD [ARGS...]", args[0])}
			}
			return c.checkEnv()
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Params = api.ExecParams{Name: args[0], ExecRequest: api.ExecRequest{Argv: args[1:], Dir: c.workdir, User: c.user}}
			opts.Params.TTY, opts.Params.Env = c.terminal(f.IO)
			if runF != nil {
				return runF(opts)
			}
			return vmExecRun(cmd.Context(), opts)
		},
	}
	c.register(cmd.Flags(), "the image's working directory, else the user's home")
	return cmd
}

// vmExecRun runs the command in the VM and relays its stream.
func vmExecRun(ctx context.Context, opts *vmExecOptions) error {
	p := opts.Params
	return streamExec(ctx, opts.IO, func(ctx context.Context, show func(api.Progress)) (*client.Stream, api.VM, error) {
		return opts.Client.VMExec(ctx, p, show)
	}, execOptions{before: "start-up", tty: p.TTY != nil})
}
