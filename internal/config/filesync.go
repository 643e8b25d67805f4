package config

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// FileSync is one [[file_sync]] entry: a host file or directory copied
// into every VM at each start.
//
//	[[file_sync]]
//	host  = "~/.config/gh/hosts.yml"
//	guest = "~/.config/gh/hosts.yml"
//	mode  = "0600"   # optional
type FileSync struct {
	Host  string   `toml:"host"`  // absolute, or ~/ for the host user's home
	Guest string   `toml:"guest"` // ~/ or /root/: the guest's home
	Mode  FileMode `toml:"mode"`  // a file's mode (default 0600), or a directory's own
}

// GuestHome is the home directory of the guest's user.
const GuestHome = "/root"

// FileMode is a permission mode written "0600" (or as a TOML octal
// integer, 0o600). Parsing never fails at decode time, so that
// validation can name the entry it belongs to.
type FileMode struct {
	Perm uint32 // valid once validated
	Set  bool
	raw  string
}

// UnmarshalTOML keeps the value for validation.
func (m *FileMode) UnmarshalTOML(v any) error {
	m.Set = true
	switch x := v.(type) {
	case string:
		m.raw = x
	case int64:
		m.raw = "0o" + strconv.FormatInt(x, 8)
	default:
		m.raw = fmt.Sprint(v) + " (not a mode)"
	}
	return nil
}

func (m *FileMode) parse() error {
	s := strings.TrimPrefix(strings.TrimPrefix(m.raw, "0o"), "0O")
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 || n == 0 {
		return fmt.Errorf("mode %q: want permission bits in octal, such as \"0600\"", m.raw)
	}
	m.Perm = uint32(n)
	return nil
}

// HostPath is the entry's host path with ~/ expanded to home.
func (f FileSync) HostPath(home string) string {
	if rest, ok := strings.CutPrefix(f.Host, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return filepath.Clean(f.Host)
}

// GuestPath is the entry's absolute guest path (~/ is /root).
func (f FileSync) GuestPath() string {
	if rest, ok := strings.CutPrefix(f.Guest, "~/"); ok {
		return path.Join(GuestHome, rest)
	}
	return path.Clean(f.Guest)
}

// validateFileSync checks every entry and names the first bad one.
func validateFileSync(entries []FileSync) error {
	for i := range entries {
		f := &entries[i]
		if err := f.validate(); err != nil {
			return fmt.Errorf("file_sync entry %d (host = %q, guest = %q): %w", i+1, f.Host, f.Guest, err)
		}
	}
	return nil
}

func (f *FileSync) validate() error {
	if f.Host == "" || f.Guest == "" {
		return fmt.Errorf("host and guest are both required")
	}
	if err := checkSyncPath("host", f.Host); err != nil {
		return err
	}
	if err := checkSyncPath("guest", f.Guest); err != nil {
		return err
	}
	g := f.GuestPath()
	if !strings.HasPrefix(g, GuestHome+"/") {
		return fmt.Errorf("guest path must be under ~/ or %s/", GuestHome)
	}
	if f.Mode.Set {
		return f.Mode.parse()
	}
	return nil
}

// checkSyncPath accepts ~/... and absolute paths without .. anywhere
// (the guest side is further held to /root by validate).
func checkSyncPath(side, p string) error {
	if strings.HasPrefix(p, "~") && !strings.HasPrefix(p, "~/") {
		return fmt.Errorf("%s path %q: only ~/ (the current user) is supported, not ~user", side, p)
	}
	if !strings.HasPrefix(p, "~/") && !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s path %q is relative: start it with ~/ or /", side, p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return fmt.Errorf("%s path %q must not contain ..", side, p)
		}
	}
	if strings.TrimRight(strings.TrimPrefix(p, "~"), "/") == "" {
		return fmt.Errorf("%s path %q names a whole home or root directory: name a file or directory in it", side, p)
	}
	return nil
}
