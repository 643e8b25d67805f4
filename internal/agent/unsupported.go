//go:build !linux

package agent

import (
	"fmt"
	"os"
)

func runInit([]string) int { return unsupported() }
func runServe() int        { return unsupported() }

func unsupported() int {
	fmt.Fprintln(os.Stderr, "banger-agent runs only inside a Linux guest")
	return 1
}
