package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/doctor/report"
	"github.com/spf13/cobra"
)

// doctorTimeout bounds `bangerd doctor`; its slowest check is sudo's
// (5 s).
const doctorTimeout = time.Minute

// doctorOptions are `doctor`'s flags and what it needs.
type doctorOptions struct {
	IO *iostreams
	// DaemonPath finds bangerd, which runs the checks.
	DaemonPath func() (string, error)

	JSON, Sudoers bool
}

// newDoctorCmd builds `doctor`; runF, when set, runs instead of doctorRun.
func newDoctorCmd(f *factory, runF func(*doctorOptions) error) *cobra.Command {
	opts := &doctorOptions{IO: f.IO, DaemonPath: f.Client.DaemonPath}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this host can run banger VMs, and say how to fix what is missing",
		Long: `Check everything a VM run needs: architecture, VMM and acceleration, tools,
privileges, host networking (bridge, nftables, DNS, .vm names, ssh-config),
runtime directory, store, images and kernels, and the resolved VM defaults
with where each comes from. --sudoers prints the sudoers snippet a non-root
user needs. Doctor never changes anything (the
store is opened read-only). Exits 1 when a check fails.

With --host (or BANGER_HOST, or a context), the remote machine is checked:
its own ` + "`banger doctor`" + ` runs there over ssh.

The checks run in bangerd (` + "`bangerd doctor`" + `), which needs no running daemon:
doctor works when the daemon cannot start.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			if f.Client.Remote != nil {
				return remoteDoctorRun(cmd.Context(), f, opts)
			}
			return doctorRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&opts.Sudoers, "sudoers", false, "print the sudoers snippet that lets a non-root user run banger's network operations")
	return cmd
}

// doctorRun has bangerd run the checks and renders its report.
func doctorRun(ctx context.Context, opts *doctorOptions) error {
	self, _ := os.Executable()
	bin, err := opts.DaemonPath()
	if err != nil {
		// The checks live in bangerd: without it, that is the finding.
		return renderDoctor(opts.IO, opts.JSON, []report.Check{{Status: "fail", Name: "bangerd", Detail: "not found beside " + self,
			Fix: "`make build` and use bin/banger, or `make install` (banger, bangerd and banger-agent in one directory)"}})
	}
	if opts.Sudoers {
		out, err := runBangerd(ctx, opts.IO, bin, "doctor", "--sudoers")
		if err != nil {
			return err
		}
		_, err = opts.IO.Out.Write(out)
		return err
	}
	dargs := []string{"doctor", "--json"}
	if self != "" {
		dargs = append(dargs, "--client", self)
	}
	out, err := runBangerd(ctx, opts.IO, bin, dargs...)
	var checks []report.Check
	if jerr := json.Unmarshal(out, &checks); jerr != nil || checks == nil {
		if err == nil {
			err = fmt.Errorf("`%s %s` printed no report: %v", bin, strings.Join(dargs, " "), jerr)
		}
		return err
	}
	return renderDoctor(opts.IO, opts.JSON, checks)
}

// runBangerd runs bin with args and returns its stdout. It exiting 1
// (doctor: a check failed) is returned along with the output; what it
// wrote on stderr names the error.
func runBangerd(ctx context.Context, ios *iostreams, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		err = fmt.Errorf("`%s %s`: %s", bin, strings.Join(args, " "), msg)
	} else if errb.Len() > 0 {
		ios.Err.Write(errb.Bytes())
	}
	var ee *exec.ExitError
	if ctx.Err() != nil && errors.As(err, &ee) {
		err = fmt.Errorf("`%s %s` did not finish within %s", bin, strings.Join(args, " "), doctorTimeout)
	}
	return out.Bytes(), err
}

func renderDoctor(ios *iostreams, asJSON bool, checks []report.Check) error {
	if asJSON {
		if err := printJSON(ios.Out, checks); err != nil {
			return err
		}
	} else {
		report.Render(ios.Out, checks)
	}
	if report.Failed(checks) {
		return exitError{ExitError}
	}
	return nil
}
