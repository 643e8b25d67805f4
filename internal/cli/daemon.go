package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/banger-dev/banger/internal/client"
	"github.com/spf13/cobra"
)

func newDaemonCmd(f *factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Start, stop or inspect bangerd (it also starts on demand)",
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Say whether bangerd runs, and which VMM it uses",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.Client.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(f.IO.Out, st)
			}
			printf(f.IO.Out, "bangerd %s running (pid %d)\nsocket: %s\nstate:  %s\nvmm:    %s (%s), %s\nrunning VMs: %d\n",
				st.Version, st.PID, st.Socket, st.StateDir, st.VMM, st.VMMReason, st.Accel, st.Running)
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	start := &cobra.Command{
		Use:   "start",
		Short: "Start bangerd in the background",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if st, err := f.Client.Status(cmd.Context()); err == nil {
				fmt.Fprintf(f.IO.Out, "bangerd already running (pid %d)\n", st.PID)
				return nil
			}
			if err := f.Client.StartDaemon(cmd.Context()); err != nil {
				return err
			}
			st, err := f.Client.Status(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IO.Out, "bangerd started (pid %d)\n", st.PID)
			return nil
		},
	}
	stop := &cobra.Command{
		Use:   "stop",
		Short: "Stop bangerd; running VMs keep running and are re-attached on the next start",
		Long: `Stop bangerd. Running VMs keep running and are re-attached on the next start.

Commands streaming through the daemon (vm exec, vm run, workspace export)
are interrupted: the command is killed in the guest, its client reports
"daemon stopped", and stop lists them as "interrupted: ...". Other calls
get a few seconds to finish; bangerd exits within about ten seconds.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.Client.Status(cmd.Context())
			if errors.Is(err, client.ErrNotRunning) {
				fmt.Fprintln(f.IO.Out, "bangerd is not running")
				return nil
			}
			if err != nil {
				return err
			}
			res, err := f.Client.Shutdown(cmd.Context())
			if err != nil {
				return err
			}
			for _, what := range res.Interrupted {
				fmt.Fprintln(f.IO.Out, "interrupted:", what)
			}
			// The daemon ends calls still running after a few seconds and
			// returns within about ten (rpc.DefaultGrace + its stopBound).
			if err := waitStopped(cmd.Context(), f.Client, st.PID, 15*time.Second); err != nil {
				return err
			}
			fmt.Fprintf(f.IO.Out, "bangerd stopped (pid %d)\n", st.PID)
			return nil
		},
	}
	dialStdio := newDialStdioCmd(f, nil)
	dialStdio.Annotations = map[string]string{annotLocal: "true"}
	cmd.AddCommand(start, stop, status, dialStdio)
	return cmd
}

func waitGone(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") || syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("bangerd (pid %d) did not exit within %s", pid, d)
}
