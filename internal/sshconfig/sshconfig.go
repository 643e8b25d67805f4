// Package sshconfig writes banger's own ssh_config (one Host block per VM
// naming its address, banger's key and banger's known_hosts) and edits the
// user's ~/.ssh/config only on request: Install adds a marker-fenced
// Include of banger's file at the top, Uninstall removes exactly that
// region. Everything else in the user's file is kept byte for byte.
package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Host is one VM as ssh sees it.
type Host struct {
	Name string // VM name; the ssh host is Name + ".vm"
	Addr string // its address on the bridge
}

func quote(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return `"` + strings.ReplaceAll(s, `"`, ``) + `"`
	}
	return s
}

// Render is banger's ssh_config. The per-VM blocks come first: ssh keeps
// the first value it finds, so the trailing `Host *.vm` block supplies
// only what they leave open (and serves names that resolve through
// banger's DNS before this file lists them).
func Render(hosts []Host, identityFile, knownHostsFile string) []byte {
	sorted := append([]Host(nil), hosts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var b bytes.Buffer
	b.WriteString("# Written by bangerd; rewritten whenever a VM is created, started, stopped\n" +
		"# or deleted, so do not edit. `banger ssh-config --install` includes it from\n" +
		"# ~/.ssh/config. Host keys are banger's pins (banger vm delete drops them).\n")
	for _, h := range sorted {
		fmt.Fprintf(&b, "\nHost %s.vm\n    HostName %s\n    HostKeyAlias %s.vm\n", h.Name, h.Addr, h.Name)
	}
	fmt.Fprintf(&b, "\nHost *.vm\n    User root\n    IdentityFile %s\n    IdentitiesOnly yes\n"+
		"    UserKnownHostsFile %s\n    GlobalKnownHostsFile /dev/null\n"+
		"    StrictHostKeyChecking accept-new\n    CheckHostIP no\n",
		quote(identityFile), quote(knownHostsFile))
	return b.Bytes()
}

// Markers fence banger's region in ~/.ssh/config.
const (
	BeginMarker = "# >>> banger >>>"
	EndMarker   = "# <<< banger <<<"
)

// Region is the block Install writes for target.
func Region(target string) string {
	return BeginMarker + " (added by `banger ssh-config --install`; `--uninstall` removes it)\n" +
		"Include " + quote(target) + "\n" + EndMarker + "\n"
}

// ErrMalformed means the markers in the file are not one well-formed
// region; banger then changes nothing.
var ErrMalformed = errors.New("malformed banger region")

// find locates the region: start and end byte offsets (end after the
// end marker's line break). ok is false when there is none.
func find(path string, b []byte) (start, end int, ok bool, err error) {
	var begins, ends []int // line numbers
	var beginOff, endOff []int
	line := 0
	// Lines are split by hand, not with bufio.Scanner: a scanner stops at
	// its buffer limit (64 KiB by default), and a region after a longer
	// line would go unseen — Install would then add a second one.
	for off := 0; off < len(b); {
		n := bytes.IndexByte(b[off:], '\n') + 1
		if n == 0 {
			n = len(b) - off
		}
		raw := b[off : off+n]
		line++
		text := strings.TrimRight(string(raw), "\r\n")
		switch {
		case strings.HasPrefix(text, BeginMarker):
			begins, beginOff = append(begins, line), append(beginOff, off)
		case strings.HasPrefix(text, EndMarker):
			ends, endOff = append(ends, line), append(endOff, off+n)
		}
		off += n
	}
	switch {
	case len(begins) == 0 && len(ends) == 0:
		return 0, 0, false, nil
	case len(begins) == 1 && len(ends) == 1 && begins[0] < ends[0]:
		return beginOff[0], endOff[0], true, nil
	}
	return 0, 0, false, fmt.Errorf("%s: %w (%d %q lines at %v, %d %q lines at %v): fix or remove them by hand, then retry",
		path, ErrMalformed, len(begins), BeginMarker, begins, len(ends), EndMarker, ends)
}

// Install puts the Include region at the top of the user's ssh config
// (an Include below a Host line would apply to that host only). It is
// idempotent; changed reports whether the file was written.
func Install(path, target string) (changed bool, err error) {
	real, b, mode, err := read(path)
	if err != nil {
		return false, err
	}
	start, end, ok, err := find(path, b)
	if err != nil {
		return false, err
	}
	want := Region(target)
	var out []byte
	if ok {
		if string(b[start:end]) == want {
			return false, nil
		}
		out = append(append(append([]byte{}, b[:start]...), want...), b[end:]...)
	} else {
		out = append([]byte(want), b...)
	}
	return true, write(real, out, mode)
}

// Uninstall removes the region, leaving the rest byte for byte.
func Uninstall(path string) (changed bool, err error) {
	real, b, mode, err := read(path)
	if err != nil {
		return false, err
	}
	start, end, ok, err := find(path, b)
	if err != nil || !ok {
		return false, err
	}
	return true, write(real, append(append([]byte{}, b[:start]...), b[end:]...), mode)
}

// Installed reports whether the region is present.
func Installed(path string) (bool, error) {
	_, b, _, err := read(path)
	if err != nil {
		return false, err
	}
	_, _, ok, err := find(path, b)
	return ok, err
}

// read follows a symlinked config (dotfile managers) so the link stays.
// A missing file reads as empty.
func read(path string) (real string, b []byte, mode os.FileMode, err error) {
	real, mode = path, 0o600
	if r, err := filepath.EvalSymlinks(path); err == nil {
		real = r
	}
	fi, err := os.Stat(real)
	if errors.Is(err, os.ErrNotExist) {
		return real, nil, mode, nil
	}
	if err != nil {
		return real, nil, mode, err
	}
	b, err = os.ReadFile(real)
	return real, b, fi.Mode().Perm(), err
}

// write replaces the file atomically with the same mode.
func write(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config.banger-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteFile writes banger's ssh_config atomically (0600).
func WriteFile(path string, data []byte) error { return write(path, data, 0o600) }

// BangerConfigPath is banger's ssh_config in its config directory.
func BangerConfigPath(configDir string) string { return filepath.Join(configDir, "ssh_config") }
