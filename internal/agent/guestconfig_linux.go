package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// configApplier writes the per-VM configuration into the tree at root.
// At boot root is "/" (after switch_root, so the image's own symlinks
// resolve inside it); tests use a temporary directory.
type configApplier struct {
	root string
	cfg  proto.GuestConfig
}

// apply runs every step and reports all failures together: a bad file
// entry should not cost the VM its SSH keys.
func (a configApplier) apply(workMounted bool) error {
	var errs []error
	if workMounted {
		errs = append(errs, a.initWorkDisk())
	}
	errs = append(errs,
		a.writeHostname(),
		a.writeResolvConf(),
		a.writeSSHHostKeys(),
		a.writeAuthorizedKeys(),
		a.writeFiles(),
	)
	return errors.Join(errs...)
}

func (a configApplier) path(p string) string { return filepath.Join(a.root, p) }

// initWorkDisk gives a new work disk (mounted at /root) the image's
// skeleton dotfiles, the way useradd would for a new home.
func (a configApplier) initWorkDisk() error {
	home := a.path("/root")
	empty, err := dirEmptyExceptLostFound(home)
	if err != nil {
		return err
	}
	if empty {
		skel := a.path("/etc/skel")
		if _, err := os.Stat(skel); err == nil {
			if err := copyTree(skel, home); err != nil {
				return fmt.Errorf("populate /root from /etc/skel: %w", err)
			}
		}
	}
	return os.Chmod(home, 0o700)
}

func (a configApplier) writeHostname() error {
	name := a.cfg.Hostname
	if name == "" {
		return nil
	}
	if err := writeFileAtomic(a.path("/etc/hostname"), []byte(name+"\n"), 0o644); err != nil {
		return fmt.Errorf("write /etc/hostname: %w", err)
	}
	hosts, err := os.ReadFile(a.path("/etc/hosts"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read /etc/hosts: %w", err)
	}
	if err := writeFileAtomic(a.path("/etc/hosts"), hostsWithName(string(hosts), name), 0o644); err != nil {
		return fmt.Errorf("write /etc/hosts: %w", err)
	}
	return nil
}

// hostsWithName makes 127.0.1.1 name the guest (the Debian convention),
// so that tools resolving their own hostname (sudo) do not stall on DNS.
func hostsWithName(hosts, name string) []byte {
	var b strings.Builder
	if strings.TrimSpace(hosts) == "" {
		hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	}
	for _, line := range strings.SplitAfter(hosts, "\n") {
		if firstField(line) == "127.0.1.1" || line == "" {
			continue
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "127.0.1.1\t%s\n", name)
	return []byte(b.String())
}

// writeResolvConf replaces /etc/resolv.conf, symlink or not: the guest
// runs no network manager that would fill a stub resolver in.
func (a configApplier) writeResolvConf() error {
	if a.cfg.Net == nil || len(a.cfg.Net.DNS) == 0 {
		return nil
	}
	var b strings.Builder
	for _, ns := range a.cfg.Net.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if err := writeFileAtomic(a.path("/etc/resolv.conf"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write /etc/resolv.conf: %w", err)
	}
	return nil
}

// writeSSHHostKeys gives the VM its own SSH identity: the image's keys
// are shared by every VM made from it, so they go.
func (a configApplier) writeSSHHostKeys() error {
	if len(a.cfg.SSHHostKeys) == 0 {
		return nil // keep the image's keys rather than leave sshd none
	}
	sshDir := a.path("/etc/ssh")
	old, _ := filepath.Glob(filepath.Join(sshDir, "ssh_host_*_key*"))
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove image host key: %w", err)
		}
	}
	for name, content := range a.cfg.SSHHostKeys {
		if strings.ContainsRune(name, '/') || !strings.HasPrefix(name, "ssh_host_") {
			return fmt.Errorf("ssh host key %q: not a host key file name", name)
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".pub") {
			mode = 0o644
		}
		if err := writeFileAtomic(filepath.Join(sshDir, name), []byte(content), mode); err != nil {
			return fmt.Errorf("write host key %s: %w", name, err)
		}
	}
	return nil
}

func (a configApplier) writeAuthorizedKeys() error {
	if len(a.cfg.AuthorizedKeys) == 0 {
		return nil
	}
	dir := a.path("/root/.ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// sshd's StrictModes rejects keys in a group- or world-writable dir.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	keys := strings.Join(a.cfg.AuthorizedKeys, "\n") + "\n"
	if err := writeFileAtomic(filepath.Join(dir, "authorized_keys"), []byte(keys), 0o600); err != nil {
		return fmt.Errorf("write authorized_keys: %w", err)
	}
	return nil
}

func (a configApplier) writeFiles() error {
	var errs []error
	for _, f := range a.cfg.Files {
		if !filepath.IsAbs(f.Path) {
			errs = append(errs, fmt.Errorf("file %q: path is not absolute", f.Path))
			continue
		}
		mode := os.FileMode(f.Mode) & os.ModePerm
		if mode == 0 {
			mode = 0o644
		}
		if err := writeFileAtomic(a.path(filepath.Clean(f.Path)), f.Content, mode); err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", f.Path, err))
		}
	}
	return errors.Join(errs...)
}
