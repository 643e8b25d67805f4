// Package config owns banger's file layout (XDG paths), the config file
// (~/.config/banger/config.toml), built-in defaults, and the resolution of
// VM sizing from config, host heuristics and floors.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Paths is where banger keeps its files.
type Paths struct {
	ConfigDir  string // ~/.config/banger
	StateDir   string // ~/.local/state/banger: database, VM disks, images, kernels
	CacheDir   string // ~/.cache/banger: rebuildable artifacts (initrds)
	RuntimeDir string // $XDG_RUNTIME_DIR/banger: socket, per-VM sockets, handles
}

// DefaultPaths resolves Paths from the XDG environment variables.
func DefaultPaths() (Paths, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Paths{}, fmt.Errorf("find home directory: %w", err)
	}
	env := func(key, def string) string {
		if v := os.Getenv(key); v != "" && filepath.IsAbs(v) {
			return v
		}
		return def
	}
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt == "" || !filepath.IsAbs(rt) {
		rt = fmt.Sprintf("/tmp/banger-runtime-%d", os.Getuid())
	} else {
		rt = filepath.Join(rt, "banger")
	}
	return Paths{
		ConfigDir:  filepath.Join(env("XDG_CONFIG_HOME", filepath.Join(home, ".config")), "banger"),
		StateDir:   filepath.Join(env("XDG_STATE_HOME", filepath.Join(home, ".local", "state")), "banger"),
		CacheDir:   filepath.Join(env("XDG_CACHE_HOME", filepath.Join(home, ".cache")), "banger"),
		RuntimeDir: rt,
	}, nil
}

func (p Paths) ConfigFile() string { return filepath.Join(p.ConfigDir, "config.toml") }
func (p Paths) Socket() string     { return filepath.Join(p.RuntimeDir, "bangerd.sock") }
func (p Paths) PIDFile() string    { return filepath.Join(p.RuntimeDir, "bangerd.pid") }
func (p Paths) Database() string   { return filepath.Join(p.StateDir, "banger.db") }
func (p Paths) DaemonLog() string  { return filepath.Join(p.StateDir, "bangerd.log") }
func (p Paths) VMDir(id string) string {
	return filepath.Join(p.StateDir, "vms", id)
}
func (p Paths) VMRuntimeDir(id string) string {
	return filepath.Join(p.RuntimeDir, "vms", id)
}
func (p Paths) ImageDir() string  { return filepath.Join(p.StateDir, "images") }
func (p Paths) KernelDir() string { return filepath.Join(p.StateDir, "kernels") }
func (p Paths) SSHDir() string    { return filepath.Join(p.StateDir, "ssh") }

// WarmDir holds the warm-start templates (start-up snapshots), one
// directory per key.
func (p Paths) WarmDir() string { return filepath.Join(p.CacheDir, "warm") }

// ErrUnsafeRuntimeDir is returned when the runtime directory is not a
// directory owned by the current user with mode 0700.
var ErrUnsafeRuntimeDir = errors.New("unsafe runtime directory")

// EnsureRuntimeDir creates the runtime directory 0700 and refuses one that
// is a symlink, owned by someone else, or open to others.
func (p Paths) EnsureRuntimeDir() error {
	if err := os.MkdirAll(filepath.Dir(p.RuntimeDir), 0o755); err != nil {
		return fmt.Errorf("create runtime dir parent: %w", err)
	}
	if err := os.Mkdir(p.RuntimeDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create runtime dir: %w", err)
	}
	return p.CheckRuntimeDir()
}

// CheckRuntimeDir verifies ownership and mode of the runtime directory.
func (p Paths) CheckRuntimeDir() error {
	fi, err := os.Lstat(p.RuntimeDir)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory (symlinks are refused)", ErrUnsafeRuntimeDir, p.RuntimeDir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrUnsafeRuntimeDir, p.RuntimeDir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm() != 0o700 {
		return fmt.Errorf("%w: %s has mode %o, want 700", ErrUnsafeRuntimeDir, p.RuntimeDir, fi.Mode().Perm())
	}
	return nil
}
