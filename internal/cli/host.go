package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// annotLocal marks commands that never talk to a daemon elsewhere
// (context, daemon dial-stdio): they run even when --host, BANGER_HOST
// or the current context is broken, which they may be used to fix.
const annotLocal = "banger/local"

// addHostFlag adds the global --host: every command's daemon is the one
// --host names, else BANGER_HOST's, else the current context's, else
// this machine's.
func addHostFlag(f *factory, root *cobra.Command) {
	var host string
	root.PersistentFlags().StringVarP(&host, "host", "H", "",
		"the daemon to use, at `URL` ssh://[user@]host[:port], reached over your own ssh (default: $BANGER_HOST, else the current context, else this machine)")
	root.RegisterFlagCompletionFunc("host", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"ssh://"}, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	if f.Client != nil {
		// Shell completion runs no pre-run: its first dial resolves.
		f.Client.Resolve = func() (*client.Remote, error) {
			r, _, err := resolveHost(host, f.Paths.ConfigDir)
			return r, err
		}
	}
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if cmd.Annotations[annotLocal] != "" || cmd.Name() == cobra.ShellCompRequestCmd || cmd.Name() == cobra.ShellCompNoDescRequestCmd {
			// (Completion parses the completed command's flags later;
			// its dial resolves then.)
			return nil
		}
		r, _, err := resolveHost(host, f.Paths.ConfigDir)
		if err != nil {
			return usageError{err}
		}
		if f.Client != nil {
			f.Client.Remote, f.Client.Resolve = r, nil
		}
		return nil
	}
}

// waitStopped waits until the daemon that had pid is gone: its /proc
// entry here, or, for a daemon elsewhere, until its socket no longer
// answers.
func waitStopped(ctx context.Context, c *client.Client, pid int, d time.Duration) error {
	if c.Remote == nil {
		return waitGone(pid, d)
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := c.Status(ctx); errors.Is(err, client.ErrNotRunning) {
			return nil
		} else if err != nil && ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("bangerd (pid %d) on %s did not exit within %s", pid, c.Remote.URL, d)
}

// remoteDoctorRun runs the remote machine's own `banger doctor` over
// ssh: the checks are about that machine.
func remoteDoctorRun(ctx context.Context, f *factory, opts *doctorOptions) error {
	args := []string{"banger", "doctor"}
	if opts.JSON {
		args = append(args, "--json")
	}
	if opts.Sudoers {
		args = append(args, "--sudoers")
	}
	c, err := f.Client.RemoteCommand(ctx, args...)
	if err != nil {
		return err
	}
	c.Stdout, c.Stderr = opts.IO.Out, opts.IO.Err
	var ee *exec.ExitError
	if err := c.Run(); errors.As(err, &ee) {
		return exitError{ee.ExitCode()}
	} else if err != nil {
		return err
	}
	return nil
}
