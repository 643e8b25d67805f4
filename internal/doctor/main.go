package doctor

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"syscall"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/doctor/report"
	"github.com/banger-dev/banger/internal/hostnet"
)

// Main is `bangerd doctor [--json] [--sudoers] [--client PATH]`, which
// `banger doctor` runs: it exits 1 when a check fails, 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	paths, err := config.DefaultPaths()
	if err != nil {
		fmt.Fprintln(stderr, "bangerd doctor:", err)
		return 1
	}
	return run(ctx, paths, args, stdout, stderr)
}

func run(ctx context.Context, paths config.Paths, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bangerd doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	sudoers := fs.Bool("sudoers", false, "print the sudoers snippet that lets a non-root user run banger's network operations")
	client := fs.String("client", "", "the banger binary whose neighbours (bangerd, banger-agent) are checked (default: this binary)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bangerd doctor [--json] [--sudoers] [--client PATH]\n\nThe host checks of `banger doctor` (which runs this); see `banger doctor --help`.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "bangerd doctor: no arguments expected, got %q\n", fs.Args())
		return 2
	}
	if *sudoers {
		if err := PrintSudoers(stdout); err != nil {
			fmt.Fprintln(stderr, "bangerd doctor:", err)
			return 1
		}
		return 0
	}
	checks := Report(Run(ctx, paths, Options{Client: *client}))
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checks); err != nil {
			fmt.Fprintln(stderr, "bangerd doctor:", err)
			return 1
		}
	} else {
		report.Render(stdout, checks)
	}
	if report.Failed(checks) {
		return 1
	}
	return 0
}

// PrintSudoers writes the snippet for `banger doctor --sudoers`: it names
// this binary, the helper, by its real path.
func PrintSudoers(w io.Writer) error {
	helper, err := hostnet.HelperPath()
	if err != nil {
		return err
	}
	name := os.Getenv("SUDO_USER")
	if name == "" {
		u, err := user.Current()
		if err != nil {
			return err
		}
		name = u.Username
	}
	// A helper the user can replace would hand them root.
	if fi, err := os.Stat(helper); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (st.Uid != 0 || fi.Mode().Perm()&0o022 != 0) {
			fmt.Fprintf(w, "# WARNING: %s is not owned by root or is writable by others, so this snippet\n# would let anyone who can replace it run code as root. Install banger root-owned\n# first (`sudo make install`: /usr/local/bin) and run `/usr/local/bin/banger doctor --sudoers`.\n", helper)
		}
	}
	fmt.Fprint(w, hostnet.Sudoers(name, helper))
	return nil
}
