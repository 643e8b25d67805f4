// Command fake-firecracker stands in for Firecracker in banger's tests; see
// package fakefc.
package main

import (
	"os"

	"github.com/banger-dev/banger/internal/vmm/firecracker/fakefc"
)

func main() { os.Exit(fakefc.Main(os.Args[1:], os.Stdout, os.Stderr)) }
