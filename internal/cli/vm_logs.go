package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
)

// vmLogsOptions are `vm logs`'s flags and argument, checked, and what it
// needs.
type vmLogsOptions struct {
	IO     *iostreams
	Client interface {
		VMLogs(context.Context, api.LogsParams) (*client.Stream, error)
	}

	Params api.LogsParams
}

// newVMLogsCmd builds `vm logs`; runF, when set, runs instead of vmLogsRun.
func newVMLogsCmd(f *factory, runF func(*vmLogsOptions) error) *cobra.Command {
	opts := &vmLogsOptions{IO: f.IO, Client: f.Client}
	p := &opts.Params
	cmd := &cobra.Command{
		Use:   "logs NAME [-f] [--tail N]",
		Short: "Show a VM's console log (kernel and init messages)",
		Long: `Show what the guest wrote to its serial console during its current or
last boot: kernel messages, the agent's start-up, init (systemd) output.
The log is kept in the VM's directory until vm delete; each boot starts a
new one.

With -f it keeps following like tail -F, until Ctrl-C: it does not end
when the VM stops, and a restarted VM's new log is followed from its start.

On a terminal, control characters and escape sequences from the guest are
removed — the guest is untrusted, and sequences can retitle windows,
rewrite the screen or worse — except newlines, tabs and colour (SGR)
sequences, so coloured boot messages stay coloured. Written to a pipe or
a file, the log is passed through byte for byte.`,
		Example: "  banger vm logs dev\n  banger vm logs dev -f --tail 20\n  banger vm logs dev | grep -i error",
		Args:    exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Name = args[0]
			if p.Tail < 0 {
				return usageError{fmt.Errorf("--tail %d: must be zero (everything) or more", p.Tail)}
			}
			if runF != nil {
				return runF(opts)
			}
			return vmLogsRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&p.Follow, "follow", "f", false, "keep printing what the guest writes, until Ctrl-C (also across stops and restarts)")
	cmd.Flags().IntVar(&p.Tail, "tail", 0, "show only the last N lines (default: all)")
	return cmd
}

// vmLogsRun copies the console log to stdout, filtered on a terminal.
func vmLogsRun(ctx context.Context, opts *vmLogsOptions) error {
	conn, err := opts.Client.VMLogs(ctx, opts.Params)
	if err != nil {
		return err
	}
	defer conn.Close()
	out := opts.IO.Out
	if opts.IO.isStdoutTTY() {
		out = &consoleFilter{w: out}
	}
	_, err = io.Copy(out, conn)
	return err
}
