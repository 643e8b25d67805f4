package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/buildinfo"
	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

// dialStdioOptions are `daemon dial-stdio`'s flags and what it needs.
type dialStdioOptions struct {
	IO *iostreams
	// Dial connects to this machine's daemon (never a --host's).
	Dial    func(ctx context.Context, start bool) (net.Conn, error)
	NoStart bool
}

// newDialStdioCmd builds `daemon dial-stdio`; runF, when set, runs
// instead of dialStdioRun.
func newDialStdioCmd(f *factory, runF func(context.Context, *dialStdioOptions) error) *cobra.Command {
	local := &client.Client{Paths: f.Paths}
	if f.Client != nil {
		local.DaemonBin = f.Client.DaemonBin
	}
	opts := &dialStdioOptions{IO: f.IO, Dial: local.DialLocal}
	cmd := &cobra.Command{
		Use:   "dial-stdio [--no-start]",
		Short: "Connect stdin and stdout to this machine's bangerd (what --host ssh://… runs remotely)",
		Long: `Connect stdin and stdout to this machine's bangerd, starting it first unless
--no-start. A banger elsewhere with --host ssh://this-machine runs
"ssh this-machine banger daemon dial-stdio" and talks to the daemon through
it, as docker does with "docker system dial-stdio".

The first line written is a greeting with the protocol version; then the
bytes pass unchanged both ways until either side closes. --host, BANGER_HOST
and contexts are ignored here: the daemon is always this machine's.

Exit status: 3 when --no-start and no daemon runs, 4 when the daemon
could not start (the reason on stderr).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return dialStdioRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.NoStart, "no-start", false, "fail (exit 3) instead of starting a daemon that is not running")
	return cmd
}

// dialStdioRun greets, then splices stdin and stdout to the daemon.
func dialStdioRun(ctx context.Context, opts *dialStdioOptions) error {
	conn, err := opts.Dial(ctx, !opts.NoStart)
	if err != nil {
		fmt.Fprintln(opts.IO.Err, "banger:", err)
		if errors.Is(err, client.ErrNotRunning) {
			return exitError{client.DialStdioNotRunning}
		}
		return exitError{client.DialStdioStartFailed}
	}
	defer conn.Close()
	hello, _ := json.Marshal(client.Hello{Banger: client.HelloMagic, APIVersion: api.Version, Version: buildinfo.Current("").Version})
	if _, err := opts.IO.Out.Write(append(hello, '\n')); err != nil {
		return err
	}
	// Whichever side ends first ends both: the client never half-closes.
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, opts.IO.In); done <- struct{}{} }()
	go func() { io.Copy(opts.IO.Out, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}
