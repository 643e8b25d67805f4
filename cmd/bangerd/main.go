// Command bangerd is banger's per-user daemon; see internal/daemon.
package main

import (
	"os"

	"github.com/banger-dev/banger/internal/daemon"
)

func main() { os.Exit(daemon.Main()) }
