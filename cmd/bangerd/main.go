// Command bangerd is banger's per-user daemon; see internal/daemon.
//
// Two other modes share the binary, so that the banger CLI links neither
// host networking nor the store:
//
//	bangerd priv OP            the privileged network helper, run by the
//	                           daemon as `sudo -n bangerd priv OP` (internal/hostnet)
//	bangerd doctor [--json]    the host checks of `banger doctor` (internal/doctor)
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/banger-dev/banger/internal/daemon"
	"github.com/banger-dev/banger/internal/doctor"
	"github.com/banger-dev/banger/internal/hostnet"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "priv":
			os.Exit(priv(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "doctor":
			os.Exit(doctor.Main(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(daemon.Main())
}

// priv is `bangerd priv OP`: one privileged network operation, its JSON
// request on stdin and response on stdout.
func priv(args []string, in io.Reader, out, errw io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(errw, "usage: bangerd priv OP (run by bangerd itself through sudo -n; see `banger doctor --sudoers`)")
		return 2
	}
	if err := hostnet.PrivMain(args[0], in, out); err != nil {
		fmt.Fprintln(errw, "bangerd priv:", err)
		return 1
	}
	return 0
}
