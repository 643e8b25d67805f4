package proto

import (
	"fmt"
	"path"
	"strings"
)

// DataDirsFile, inside an image, lists directories that need a real ext4
// filesystem rather than the overlayfs root: overlay2 storage (Docker's,
// containerd's) cannot stack on overlayfs. One absolute path a line, `#`
// starts a comment. At boot the agent bind-mounts each from DataDirsDisk/<path>
// on the VM's overlay disk — beside the overlay's upper layer, not in it —
// so they last across vm stop/start as the root's changes do, are copied
// by snapshots, and are left out of `image promote`, which reads the
// upper layer only.
const DataDirsFile = "/etc/banger/data-dirs"

// DataDirsDisk is the directory on the overlay disk holding the data
// directories (the overlay's own are upper/ and work/).
const DataDirsDisk = "data"

// MaxDataDirs bounds how many directories an image may list.
const MaxDataDirs = 16

// ParseDataDirs reads a DataDirsFile: clean absolute paths, none of them
// "/" or under a filesystem the boot mounts itself (/proc, /sys, /dev,
// /run, /root). The paths are returned relative to the root.
func ParseDataDirs(b []byte) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		p := strings.TrimSpace(line)
		if p == "" {
			continue
		}
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return nil, fmt.Errorf("%s line %d: %q is not a clean absolute path below /", DataDirsFile, i+1, p)
		}
		for _, m := range []string{"/proc", "/sys", "/dev", "/run", "/root"} {
			if p == m || strings.HasPrefix(p, m+"/") {
				return nil, fmt.Errorf("%s line %d: %s is under %s, which the boot mounts itself", DataDirsFile, i+1, p, m)
			}
		}
		if seen[p] {
			continue
		}
		if len(out) == MaxDataDirs {
			return nil, fmt.Errorf("%s: more than %d directories", DataDirsFile, MaxDataDirs)
		}
		seen[p] = true
		out = append(out, p[1:])
	}
	return out, nil
}
