package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
)

// vmRunOptions are `vm run`'s flags and arguments, checked, and what it
// needs.
type vmRunOptions struct {
	IO     *iostreams
	Client interface {
		VMRun(context.Context, api.RunParams, func(api.Progress)) (*client.Stream, api.VM, error)
		VMRunWorkspace(context.Context, api.RunParams, io.Reader, func(api.Progress)) (*client.Stream, api.VM, error)
	}

	Params    api.RunParams  // everything but the workspace
	Repo      string         // the repository to import, if any
	Workspace workspaceFlags // how to import it
}

// newVMRunCmd builds `vm run`; runF, when set, runs instead of vmRunRun.
func newVMRunCmd(f *factory, runF func(*vmRunOptions) error) *cobra.Command {
	opts := &vmRunOptions{IO: f.IO, Client: f.Client}
	var size sizeFlags
	var rm bool
	var c commandFlags
	var net netFlags
	cmd := &cobra.Command{
		Use:   "run [flags] [REPO [flags]] [-- CMD [ARGS...]]",
		Short: "Boot a VM, run one command in it, and (with --rm) throw it away",
		Long: `Boot a fresh VM, run CMD in it through the guest agent (no SSH needed),
stream its output, and exit with its exit code. With --rm the VM is deleted
before banger returns; Ctrl-C interrupts the command and, with --rm, removes
the VM.

An image pulled from an OCI registry keeps its config: the command runs
with the image's environment (--env adds to it and wins on the same name)
and in its working directory (unless --workdir or a repository says
otherwise). Without CMD the image's own command (Entrypoint then Cmd) runs;
an image that defines none is refused before any VM is created. A CMD
given after -- replaces the image's command and entrypoint.

A first argument before -- that looks like a path (has a /, or starts with
. or ~) is the repository; one that does not exist is an error, never a
command. A guest command that is a path goes after --.`,
		Example: "  banger vm run --rm -- uname -a\n  banger vm run --rm --vcpu 2 -- sh -c 'nproc; free -m'\n" +
			"  banger vm run --rm ./myrepo -- make test     # the repository's committed files in /root/repo\n" +
			"  banger vm run --rm -t -- bash                # an interactive shell in a throwaway VM\n" +
			"  banger vm run --rm --image golang:1.22 -- go version   # the image's PATH applies\n" +
			"  banger vm run --rm --image docker.io/library/hello-world   # the image's own command\n" +
			"  banger vm run --rm --net isolated -- ./untrusted.sh    # no egress at all",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkEnv(); err != nil {
				return err
			}
			repo, args, err := splitRunRepo(cmd, args)
			if err != nil {
				return err
			}
			p, err := size.params(cmd)
			if err != nil {
				return err
			}
			if p.Net, err = net.policy(cmd); err != nil {
				return err
			}
			if err := net.ports(cmd, &p); err != nil {
				return err
			}
			if repo == "" && opts.Workspace.changed(cmd) {
				return usageError{fmt.Errorf("workspace flags need a repository: banger vm run [flags] REPO -- CMD [ARGS...]")}
			}
			opts.Params = api.RunParams{Create: p, ExecRequest: api.ExecRequest{Argv: args, Dir: c.workdir, User: c.user}, Remove: rm}
			opts.Params.TTY, opts.Params.Env = c.terminal(f.IO)
			opts.Repo = repo
			if runF != nil {
				return runF(opts)
			}
			return vmRunRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().SetInterspersed(false)
	size.register(cmd.Flags())
	cmd.Flags().BoolVar(&rm, "rm", false, "delete the VM when the command ends")
	c.register(cmd.Flags(), "the repository, else the image's working directory, else the user's home")
	opts.Workspace.register(cmd.Flags())
	net.register(cmd.Flags(), true)
	completeNetMode(cmd)
	return cmd
}

// vmRunRun plans the repository's import (a dry run ends there), then
// boots the VM and relays the command's stream; the import's archive is
// the call's request body, imported once the VM is up and before the
// command runs.
func vmRunRun(ctx context.Context, opts *vmRunOptions) error {
	p := opts.Params
	var ip *importPlan
	if opts.Repo != "" {
		var err error
		if ip, err = opts.Workspace.plan(ctx, opts.IO, opts.Repo); err != nil || ip == nil {
			return err // or a dry run, done
		}
		p.Workspace = &ip.spec
	}
	return streamExec(ctx, opts.IO, func(ctx context.Context, show func(api.Progress)) (*client.Stream, api.VM, error) {
		if ip == nil {
			return opts.Client.VMRun(ctx, p, show)
		}
		archive := ip.plan.Stream(ctx)
		defer archive.Close()
		return opts.Client.VMRunWorkspace(ctx, p, archive, show)
	}, execOptions{before: "boot", tty: p.TTY != nil, after: func(vm api.VM) {
		if !p.Remove {
			fmt.Fprintf(opts.IO.Err, "banger: VM %s is still running (banger vm delete %s)\n", vm.Name, vm.Name)
		}
	}})
}

// execOptions shape streamExec.
type execOptions struct {
	before string       // what an interrupt before the stream opens cuts short
	after  func(api.VM) // runs once the command has ended, when set
	tty    bool         // the command has a guest terminal: raw local terminal, resizes sent
}

// terminalFor is the guest terminal for -t: the size of ours (80x24 when
// stdout is not a terminal), and our TERM ahead of the user's -e values.
func terminalFor(ios *iostreams, vars []string) (*api.WinSize, []string) {
	ws := &api.WinSize{Rows: 24, Cols: 80}
	if out, ok := ios.Out.(*os.File); ok && term.IsTerminal(int(out.Fd())) {
		if cols, rows, err := term.GetSize(int(out.Fd())); err == nil && rows > 0 && cols > 0 {
			ws = &api.WinSize{Rows: uint16(rows), Cols: uint16(cols)}
		}
	}
	if t := os.Getenv("TERM"); t != "" {
		vars = append([]string{"TERM=" + t}, vars...)
	}
	return ws, vars
}

// streamExec opens an exec stream (VMRun, VMExec), relays stdio
// and signals, and returns the guest command's exit code as the CLI's.
// The first Ctrl-C goes to the command; a second ends the stream (and the
// command with it). With a TTY and a local terminal, ours is put in raw
// mode for the command's lifetime — keys, Ctrl-C included, go to the
// guest terminal — and its size changes follow.
func streamExec(ctx context.Context, ios *iostreams, open func(context.Context, func(api.Progress)) (*client.Stream, api.VM, error), o execOptions) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	show, done := progressPrinter(ios)
	var vm api.VM
	type result struct {
		conn io.ReadWriteCloser
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		conn, v, err := open(ctx, show)
		vm = v
		if conn != nil {
			resc <- result{conn, err}
			return
		}
		resc <- result{nil, err}
	}()
	var res result
	select {
	case res = <-resc:
	case <-sigs:
		// Leaving closes the connection; the daemon finishes what it was
		// doing (for vm run: the boot and, with --rm, the deletion).
		done()
		fmt.Fprintf(ios.Err, "banger: interrupted during %s\n", o.before)
		return exitError{ExitInterrupt}
	}
	done()
	if res.err != nil {
		fmt.Fprintln(ios.Err, "banger:", friendly(res.err))
		return exitError{ExitRunFailed}
	}
	defer res.conn.Close()
	ctl := make(chan proto.Frame, 4)
	restore := func() {}
	if o.tty {
		restore = rawTerminal(ios, ctl)
	}
	var interrupted atomic.Bool
	go func() {
		for s := range sigs {
			if interrupted.Swap(true) {
				fmt.Fprintln(ios.Err, "banger: interrupted again; ending the command")
				res.conn.Close()
				return
			}
			if sig, ok := s.(syscall.Signal); ok {
				ctl <- proto.SignalFrame(byte(sig))
			}
		}
	}()
	st, err := proto.PumpExec(res.conn, ios.In, ios.Out, ios.Err, ctl)
	restore()
	if err != nil && interrupted.Load() {
		return exitError{ExitInterrupt}
	}
	if err != nil {
		fmt.Fprintln(ios.Err, "banger: lost the command's stream:", err)
		return exitError{ExitRunFailed}
	}
	if st.Error != "" {
		fmt.Fprintln(ios.Err, "banger:", st.Error)
		if st.Code == 0 {
			st.Code = ExitRunFailed
		}
	}
	if interrupted.Load() && st.Code == 0 {
		st.Code = ExitInterrupt
	}
	if o.after != nil {
		o.after(vm)
	}
	if st.Code != 0 {
		return exitError{st.Code}
	}
	return nil
}

// rawTerminal puts a local terminal on stdin in raw mode and sends the
// size of the one on stdout on ctl whenever it changes; the returned
// function undoes both. Without a local terminal it does nothing.
func rawTerminal(ios *iostreams, ctl chan<- proto.Frame) (restore func()) {
	in, ok := ios.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return func() {}
	}
	state, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return func() {}
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				if ws, _ := terminalFor(ios, nil); ws != nil {
					select {
					case ctl <- proto.ResizeFrame(proto.WinSize{Rows: ws.Rows, Cols: ws.Cols}):
					default: // the stream is busy or gone; the next change retries
					}
				}
			case <-stop:
				return
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		close(stop)
		term.Restore(int(in.Fd()), state)
	}
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
