package firecracker

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/banger-dev/banger/internal/vmm"
)

// JailerOptions start Firecracker through the jailer (see the package
// comment for the privilege model). The jailer itself must run as root.
type JailerOptions struct {
	Binary        string // jailer executable; empty means "jailer" in PATH
	UID, GID      int    // Firecracker runs as these; must not be root
	ChrootBase    string // default /srv/jailer
	CgroupVersion int    // 1 or 2; 0 leaves the jailer's default
	NetNS         string // optional network namespace path (/var/run/netns/X)
}

const defaultChrootBase = "/srv/jailer"

// jailRunDir is the one directory inside the chroot that Firecracker, after
// dropping privileges, may create files in: sockets, log, metrics.
const jailRunDir = "/run"

func (j *JailerOptions) base() string {
	if j.ChrootBase == "" {
		return defaultChrootBase
	}
	return j.ChrootBase
}

func (j *JailerOptions) binary() (string, error) {
	name := j.Binary
	if name == "" {
		name = "jailer"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("jailer binary %q not found: %w", name, err)
	}
	return filepath.Abs(p)
}

func (j *JailerOptions) check() error {
	if _, err := j.binary(); err != nil {
		return err
	}
	if j.UID == 0 || j.GID == 0 {
		return errors.New("jailer: uid and gid must not be 0, or the jail protects nothing")
	}
	if os.Geteuid() != 0 {
		return errors.New("jailer: must be started as root (it chroots, makes device nodes and drops to uid:gid)")
	}
	return nil
}

// jailLayout is where the jailer puts one VM:
// <base>/<basename of exec file>/<id>/root is the chroot.
type jailLayout struct {
	Dir  string // <base>/<exec>/<id>: removed after the process exits
	Root string // Dir/root
}

func newJailLayout(j *JailerOptions, fcBinary, id string) jailLayout {
	dir := filepath.Join(j.base(), filepath.Base(fcBinary), id)
	return jailLayout{Dir: dir, Root: filepath.Join(dir, "root")}
}

// host turns a path as Firecracker sees it inside the chroot into the
// host's path for the same file.
func (l jailLayout) host(inside string) string { return filepath.Join(l.Root, inside) }

// jailerArgs is the jailer's argv. The jailer is not daemonized and gets
// no new PID namespace, so the process started is Firecracker after exec
// and the driver reaps it as usual. The jailer passes --id to Firecracker.
func jailerArgs(jailerBin string, j *JailerOptions, fcBinary, id string, fcArgs []string) []string {
	argv := []string{jailerBin,
		"--id", id,
		"--exec-file", fcBinary,
		"--uid", strconv.Itoa(j.UID),
		"--gid", strconv.Itoa(j.GID),
		"--chroot-base-dir", j.base(),
	}
	if j.CgroupVersion != 0 {
		argv = append(argv, "--cgroup-version", strconv.Itoa(j.CgroupVersion))
	}
	if j.NetNS != "" {
		argv = append(argv, "--netns", j.NetNS)
	}
	return append(append(argv, "--"), fcArgs...)
}

// jailSpec returns spec with every input path replaced by its name inside
// the chroot. It is pure, so the layout can be tested without root.
func jailSpec(spec vmm.Spec) vmm.Spec {
	out := spec
	out.Disks = make([]vmm.Disk, len(spec.Disks))
	out.KernelELF, out.Kernel = "/kernel", ""
	if spec.Initrd != "" {
		out.Initrd = "/initrd"
	}
	for i, d := range spec.Disks {
		d.Path = "/drives/" + d.ID
		out.Disks[i] = d
	}
	return out
}

// stage hard-links the VM's files into the chroot (the notes warn that the
// SDK's os.Link fails across filesystems; so does this, with a clear
// message) and makes the run directory Firecracker writes in. Writable
// disks are chowned to the jail's user; read-only inputs are shared images
// and are left alone, so they must be readable by that user.
func (l jailLayout) stage(j *JailerOptions, spec, jailed vmm.Spec) error {
	if err := os.RemoveAll(l.Dir); err != nil {
		return fmt.Errorf("remove stale jail: %w", err)
	}
	run := l.host(jailRunDir)
	if err := os.MkdirAll(filepath.Join(l.Root, "drives"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(run, 0o700); err != nil {
		return err
	}
	if err := os.Chown(run, j.UID, j.GID); err != nil {
		return fmt.Errorf("chown jail run dir: %w", err)
	}
	link := func(src, inside string) error {
		if err := os.Link(src, l.host(inside)); err != nil {
			return fmt.Errorf("link %s into jail (it must be on the same filesystem as %s): %w", src, l.Root, err)
		}
		return nil
	}
	if spec.Restore == "" { // a restore loads no kernel or initrd
		if err := link(kernelPath(spec), jailed.KernelELF); err != nil {
			return err
		}
		if spec.Initrd != "" {
			if err := link(spec.Initrd, jailed.Initrd); err != nil {
				return err
			}
		}
	}
	for i, d := range spec.Disks {
		if err := link(d.Path, jailed.Disks[i].Path); err != nil {
			return err
		}
		if !d.ReadOnly {
			if err := os.Chown(d.Path, j.UID, j.GID); err != nil {
				return fmt.Errorf("chown %s: %w", d.Path, err)
			}
		}
	}
	return nil
}
