package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// MaskedUnits are systemd units linked to /dev/null in /etc/systemd/system.
// Each only costs boot time or background CPU in a disposable VM (all the
// more under TCG, where every process start is slow) or would block boot.
// Masking a unit the image does not ship is harmless and keeps the mask in
// force if a user installs the package later.
var MaskedUnits = []string{
	// /etc/machine-id is empty, so every boot is a "first boot": it would
	// prompt for locale/timezone/root password on the console and hang
	"systemd-firstboot.service",
	// downloads package lists shortly after boot: network and CPU a
	// throwaway VM never benefits from
	"apt-daily.timer",
	// unattended upgrades belong in the image build, not in each VM
	"apt-daily-upgrade.timer",
	// daily copy of the dpkg database; the image is the backup
	"dpkg-db-backup.timer",
	// rebuilds the man index (minutes under TCG) if man-db is ever installed
	"man-db.timer",
	// scrubs LVM-backed ext4; there is no LVM in a banger VM
	"e2scrub_all.timer",
	// cleanup for e2scrub_all, same reason
	"e2scrub_reap.service",
	// Persistent=yes fires at first boot; trimming a sparse overlay is the
	// host's business
	"fstrim.timer",
	// the clock comes from the host (RTC at boot); NTP would wait for the
	// network
	"systemd-timesyncd.service",
	// banger-agent configures the NIC before systemd starts; waiting adds up
	// to 2 min if anything pulls network-online.target
	"systemd-networkd-wait-online.service",
	// deprecated "wait for all devices"; a VM's few virtio devices are ready
	// before init
	"systemd-udev-settle.service",
	// no persistent-storage backend in a VM
	"systemd-pstore.service",
	// no VGA console on microvm/Firecracker; the root password is locked
	// anyway
	"getty@.service",
	// console=ttyS0 would get a login prompt nobody can use (root is locked)
	// and it competes for the console
	"serial-getty@.service",
	// same as serial-getty, for /dev/console
	"console-getty.service",
	// alias of getty@ for VT switching; no VTs here
	"autovt@.service",
	// the root is an overlayfs assembled by banger-agent and /etc/fstab is
	// empty: there is nothing to remount (~0.3 s on the boot's critical path)
	"systemd-remount-fs.service",
	// each modprobe@ instance costs ~0.4 s of boot under emulation and
	// loads what the kernel requests on demand anyway (the module disk at
	// /lib/modules answers those requests; kernels without it have none)
	"modprobe@.service",
	// debugfs/tracefs/hugetlbfs mounts nothing in a sandbox uses
	"sys-kernel-debug.mount",
	"sys-kernel-tracing.mount",
	"dev-hugepages.mount",
}

// defaultTarget is the unit /etc/systemd/system/default.target points at:
// graphical.target only adds waiting for units a server VM does not have.
const defaultTarget = "/lib/systemd/system/multi-user.target"

// sshdDropIn is appended to sshd's configuration. Debian's sshd_config
// includes sshd_config.d/*.conf first and sshd keeps the first value it
// reads, so these win over the defaults below them.
const sshdDropIn = `# Written by banger at image build.
# Reverse DNS of clients costs seconds when the VM's resolver is not up yet.
UseDNS no
# Keys only: banger installs the user's key through its agent.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
# banger-agent writes one ed25519 host key per VM; naming it keeps sshd from
# logging errors for the RSA/ECDSA keys the image no longer carries.
HostKey /etc/ssh/ssh_host_ed25519_key
`

// sshServiceDropIn replaces ssh.service's "sshd -t" pre-check (one more
// sshd exec, slow under TCG; sshd validates its configuration on start
// anyway) with a fallback that makes a host key when nothing provided one,
// so the image still gets a working sshd when booted without banger-agent.
// Debian only generates host keys in the package's postinst.
const sshServiceDropIn = `# Written by banger at image build.
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key || exec /usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key'
`

// filterOptions parameterises customizeTar (tests pin the time).
type filterOptions struct {
	ModTime time.Time
	// A recipe's additions (Recipe.filter): files and links added like
	// the managed ones, entries dropped.
	Files map[string]RecipeFile
	Links map[string]string
	Drop  []string
}

// managedFile is an entry the filter owns: any original at that path is
// dropped and this one is appended at the end of the stream.
type managedFile struct {
	content string
	mode    int64
}

func managedFiles() map[string]managedFile {
	return map[string]managedFile{
		// Disks are mounted by banger-agent; fstab entries would only add
		// mount units that wait for devices.
		"/etc/fstab": {"# banger: disks are mounted by banger-agent at boot.\n", 0o644},
		// Empty, so systemd makes a fresh machine ID per VM. A copied ID
		// would give every VM the same DHCP/journal identity.
		"/etc/machine-id": {"", 0o444},
		// mmdebstrap copies the build host's name and resolver into the
		// tree; neither belongs in an image. banger-agent writes both.
		"/etc/hostname":                                 {"banger\n", 0o644},
		"/etc/resolv.conf":                              {"# banger: written by banger-agent at boot.\n", 0o644},
		"/etc/ssh/sshd_config.d/banger.conf":            {sshdDropIn, 0o644},
		"/etc/systemd/system/ssh.service.d/banger.conf": {sshServiceDropIn, 0o644},
	}
}

// managedLinks are symlinks the filter owns, besides the masks.
func managedLinks() map[string]string {
	return map[string]string{
		"/etc/systemd/system/default.target": defaultTarget,
		// Enable sshd even if the package's postinst did not (it does
		// today; the filter guarantees it rather than trusting it).
		"/etc/systemd/system/multi-user.target.wants/ssh.service": "/lib/systemd/system/ssh.service",
		"/etc/systemd/system/sshd.service":                        "/lib/systemd/system/ssh.service",
	}
}

// dropped reports whether an image entry is removed outright.
func dropped(name string) bool {
	// Every VM gets its own host key from banger-agent; keys baked into
	// the image would be shared by all VMs built from it.
	if strings.HasPrefix(name, "/etc/ssh/ssh_host_") {
		return true
	}
	// D-Bus falls back to /etc/machine-id; a stale copy here would win.
	if name == "/var/lib/dbus/machine-id" {
		return true
	}
	// "Wants" links to masked units (getty@tty1, apt timers) would only
	// make systemd log that they are masked.
	if strings.HasPrefix(name, "/etc/systemd/system/") && strings.Contains(path.Dir(name), ".wants") {
		return isMasked(path.Base(name))
	}
	return false
}

// isMasked matches unit names and instances of masked templates.
func isMasked(unit string) bool {
	for _, m := range MaskedUnits {
		if unit == m {
			return true
		}
		if strings.HasSuffix(m, "@.service") && strings.HasPrefix(unit, strings.TrimSuffix(m, ".service")) && strings.HasSuffix(unit, ".service") {
			return true
		}
	}
	return false
}

// inputError is a failure to read the incoming tar stream: the producer
// (mmdebstrap) died or wrote garbage, which makes its error the one to
// report rather than the consumer's.
type inputError struct{ err error }

func (e *inputError) Error() string { return "read rootfs tar: " + e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// tailReader remembers how much it read and the last 1 KiB of it.
// archive/tar reports a stream cut at a block boundary as a clean io.EOF,
// so the filter checks the end itself: a complete tar is a whole number of
// 512-byte blocks ending in the two zero blocks of its end marker.
type tailReader struct {
	r    io.Reader
	n    int64
	last [1024]byte
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n >= len(t.last) {
		copy(t.last[:], p[n-len(t.last):n])
	} else if n > 0 {
		copy(t.last[:], t.last[n:])
		copy(t.last[len(t.last)-n:], p[:n])
	}
	t.n += int64(n)
	return n, err
}

func (t *tailReader) endsLikeTar() bool {
	return t.n >= int64(len(t.last)) && t.n%512 == 0 && bytes.Count(t.last[:], []byte{0}) == len(t.last)
}

// cleanName turns "./etc/fstab" or "etc/fstab/" into "/etc/fstab".
func cleanName(n string) string { return path.Clean("/" + n) }

// customizeTar copies the rootfs tar stream from r to w, customising it for
// fast VM boot. Working on the stream (instead of a chroot) means nothing
// from the image is ever unpacked on the host and no root is needed.
func customizeTar(r io.Reader, w io.Writer, opt filterOptions) error {
	files, links := managedFiles(), managedLinks()
	for _, u := range MaskedUnits {
		links["/etc/systemd/system/"+u] = "/dev/null"
	}
	for n, f := range opt.Files {
		files[cleanName(n)] = managedFile{f.Content, f.Mode}
	}
	for n, l := range opt.Links {
		links[cleanName(n)] = l
	}
	drop := dropSet(opt.Drop)
	tail := &tailReader{r: r}
	r = tail
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	seenDirs := map[string]bool{}
	gone := map[string]bool{}           // entries not copied; hard links to them go too
	shadows := map[string]*tar.Header{} // /etc/shadow and its backup, rewritten
	shadowData := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &inputError{err}
		}
		name := cleanName(hdr.Name)
		_, isFile := files[name]
		_, isLink := links[name]
		if isFile || isLink || dropped(name) || drop[name] || (hdr.Typeflag == tar.TypeLink && gone[cleanName(hdr.Linkname)]) {
			gone[name] = true
			continue
		}
		if (name == "/etc/shadow" || name == "/etc/shadow-") && hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			shadows[name], shadowData[name] = hdr, lockRoot(b)
			gone[name] = true
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			seenDirs[name] = true
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write rootfs tar: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
	}
	// Drain the tar's trailing padding so mmdebstrap never sees EPIPE.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return &inputError{err}
	}
	if !tail.endsLikeTar() {
		return &inputError{errors.New("stream cut short (no end-of-archive marker)")}
	}

	add := func(h *tar.Header, body []byte) error {
		// Parents first, so they get root:root 0755 instead of whatever
		// the ext4 writer would infer.
		for _, d := range parents(h.Name) {
			if seenDirs[d] {
				continue
			}
			seenDirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "." + d + "/", Mode: 0o755, ModTime: opt.ModTime}); err != nil {
				return err
			}
		}
		h.Name = "." + h.Name
		h.ModTime = opt.ModTime
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, n := range sortedKeys(shadows) {
		h := *shadows[n]
		h.Name = n
		if err := add(&h, shadowData[n]); err != nil {
			return err
		}
	}
	for _, n := range sortedKeys(files) {
		f := files[n]
		if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: f.mode}, []byte(f.content)); err != nil {
			return err
		}
	}
	for _, n := range sortedKeys(links) {
		if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: n, Linkname: links[n], Mode: 0o777}, nil); err != nil {
			return err
		}
	}
	return tw.Close()
}

// lockRoot sets root's password field to "*": no password can match, yet
// sshd still accepts the root's public keys. ("!" would make OpenSSH treat
// the account as locked and refuse keys too when PAM is off.)
func lockRoot(shadow []byte) []byte {
	lines := bytes.Split(shadow, []byte("\n"))
	for i, l := range lines {
		f := bytes.Split(l, []byte(":"))
		if len(f) > 2 && string(f[0]) == "root" {
			f[1] = []byte("*")
			lines[i] = bytes.Join(f, []byte(":"))
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// parents lists the directories above name, outermost first, without "/".
func parents(name string) []string {
	var out []string
	for d := path.Dir(name); d != "/"; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
