// Command banger-agent is the guest agent: the initramfs's /init and the
// service that answers the host inside every banger VM. It must be built
// static (CGO_ENABLED=0). All of it lives in internal/agent.
package main

import (
	"os"

	"github.com/banger-dev/banger/internal/agent"
)

func main() { os.Exit(agent.Main(os.Args)) }
