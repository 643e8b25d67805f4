package agent

import (
	"fmt"
	"os"
)

// Version is the agent's version, reported in the handshake and by ping.
// Release builds set it with
// -ldflags "-X github.com/banger-dev/banger/internal/agent.Version=...".
var Version = "dev"

// Main runs banger-agent and returns its exit code. As PID 1 it is always
// init, whatever the kernel put in argv.
func Main(args []string) int {
	mode := ""
	if len(args) > 1 {
		mode = args[1]
	}
	switch {
	case os.Getpid() == 1 || mode == "init":
		return runInit(args)
	case mode == "serve":
		return runServe()
	case mode == "version":
		fmt.Println("banger-agent", Version)
		return 0
	default:
		fmt.Fprintln(os.Stderr, "usage: banger-agent init|serve|version")
		return 2
	}
}
