package vms

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/store"
)

// checkForkLimits refuses a fork of n children that cannot fit, before
// anything is made: n within api.MaxForkCount (checked by forkNames),
// free addresses in the VM subnet, host memory (each child may come to
// use all of its RAM, and the fork point's copy of the parent's memory
// is held while children map it: (n + 1) × the parent's memory against
// MemAvailable), and
// disk space where VMs live (the fork point's state, at most the
// parent's RAM, plus n + 1 copies of the parent's allocated disk blocks;
// reflinks would cost less, but that cannot be known in advance).
func (s *Service) checkForkLimits(ctx context.Context, parent store.VM, n int) error {
	free, err := s.Store.FreeAddresses(ctx, s.Net.Subnet(), s.Net.Gateway())
	if err != nil {
		return err
	}
	if free < n {
		return api.Conflictf("fork of %s: %d %s need %d addresses and %s has %d free: delete VMs or fork fewer",
			parent.Name, n, plural(n, "child", "children"), n, s.Net.Subnet(), free)
	}
	// + 1: the fork point's copy of the parent's memory (forkshare.go)
	// stays in memory while any child maps it
	if avail, err := memAvailableMiB("/proc/meminfo"); err == nil && (n+1)*parent.MemoryMiB > avail {
		return api.Conflictf("fork of %s: %d %s of %d MiB and the fork point's copy of its memory may use %d MiB and the host has %d MiB available: fork fewer, or stop VMs",
			parent.Name, n, plural(n, "child", "children"), parent.MemoryMiB, (n+1)*parent.MemoryMiB, avail)
	}
	var disks int64
	for _, d := range s.dir(parent.ID).Disks() {
		var st unix.Stat_t
		if unix.Stat(d, &st) == nil {
			disks += st.Blocks * 512
		}
	}
	need := int64(parent.MemoryMiB)<<20 + int64(n+1)*disks
	var fs unix.Statfs_t
	if unix.Statfs(s.Paths.StateDir, &fs) == nil {
		if have := int64(fs.Bavail) * fs.Bsize; need > have {
			return api.Conflictf("fork of %s: %d %s need up to %s on %s (state and disk copies) and %s is free: free some space or fork fewer",
				parent.Name, n, plural(n, "child", "children"), config.FormatSize(need), s.Paths.StateDir, config.FormatSize(have))
		}
	}
	return nil
}

// memAvailableMiB reads MemAvailable from a meminfo file.
func memAvailableMiB(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("%s: no MemAvailable", path)
}
