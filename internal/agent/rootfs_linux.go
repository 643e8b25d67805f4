package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// Mount points inside the initramfs while the root is assembled.
const (
	lowerDir = "/lower"   // the image, read-only
	upperDir = "/upper"   // the overlay disk: upper/ and work/ for overlayfs
	newRoot  = "/newroot" // the overlayfs root being built
)

// mountKernelFS mounts what the agent and everything after it need from
// the kernel. devpts and /dev/shm are there for an image whose init is
// the agent; systemd leaves existing mounts alone.
func mountKernelFS() error {
	mounts := []struct {
		src, target, fstype, data string
		flags                     uintptr
		required                  bool
	}{
		{"proc", "/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, true},
		{"sysfs", "/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, true},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755", unix.MS_NOSUID, true},
		{"devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=000", unix.MS_NOSUID | unix.MS_NOEXEC, false},
		{"tmpfs", "/dev/shm", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV, false},
	}
	for _, m := range mounts {
		err := mount(m.src, m.target, m.fstype, m.flags, m.data)
		if errors.Is(err, unix.EBUSY) {
			continue // already mounted (a kernel with DEVTMPFS_MOUNT)
		}
		if err != nil && m.required {
			return err
		}
	}
	return nil
}

// mountRoot assembles the guest's root at newRoot: overlayfs of the image
// and the overlay disk, the work disk at /root, a tmpfs at /run.
func mountRoot(disks map[string]string, log *slog.Logger) (workMounted bool, err error) {
	base, ok := disks[proto.RoleBase]
	if !ok {
		return false, errors.New("no base image disk")
	}
	if err := mountExt4(base, lowerDir, unix.MS_RDONLY); err != nil {
		return false, err
	}
	if dev, ok := disks[proto.RoleOverlay]; ok {
		err = mountExt4(dev, upperDir, 0)
	} else {
		log.Warn("no overlay disk: changes to / are lost at power-off")
		err = mount("tmpfs", upperDir, "tmpfs", 0, "mode=0755")
	}
	if err != nil {
		return false, err
	}
	if err := mountOverlay(); err != nil {
		return false, err
	}
	if dev, ok := disks[proto.RoleWork]; ok {
		if err := mountExt4(dev, filepath.Join(newRoot, "root"), 0); err != nil {
			return false, err
		}
		workMounted = true
	}
	// The agent's runtime copy lives here; systemd keeps an existing /run.
	err = mount("tmpfs", filepath.Join(newRoot, "run"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755")
	return workMounted, err
}

func mountOverlay() error {
	for _, d := range []string{"upper", "work"} {
		if err := os.MkdirAll(filepath.Join(upperDir, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lowerDir, upperDir, upperDir)
	if err := mount("overlay", newRoot, "overlay", 0, opts); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("%w (overlayfs missing: is the overlay module in the initramfs?)", err)
		}
		return err
	}
	return nil
}

// mountExt4 mounts an ext4 disk. A read-only mount of an image whose
// journal wants replaying fails on a read-only device; retrying with
// noload mounts it as it is.
func mountExt4(dev, target string, flags uintptr) error {
	err := mount(dev, target, "ext4", flags, "")
	if err != nil && flags&unix.MS_RDONLY != 0 {
		if err2 := mount(dev, target, "ext4", flags, "noload"); err2 == nil {
			return nil
		}
	}
	if errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%w (ext4 missing: is the ext4 module in the initramfs?)", err)
	}
	return err
}

func mount(src, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", target, err)
	}
	if err := unix.Mount(src, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", src, fstype, target, err)
	}
	return nil
}

// installAgent copies the running binary into the new root's /run, so the
// serving copy outlives the initramfs.
func installAgent() error {
	return copyFile("/proc/self/exe", filepath.Join(newRoot, proto.AgentRuntimePath), 0o755)
}

// switchRoot makes newRoot the root, as switch_root(8) does: move the
// kernel filesystems along, free the initramfs, move the new root over /
// and chroot into it.
func switchRoot(log *slog.Logger) error {
	for _, m := range []string{"/dev", "/proc", "/sys"} {
		target := filepath.Join(newRoot, m)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m, target, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s to the new root: %w", m, err)
		}
	}
	freeInitramfs(log)
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("chdir %s: %w", newRoot, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the new root to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// freeInitramfs deletes the initramfs's files (modules, the agent) whose
// memory would otherwise stay pinned, hidden under the new root. It only
// touches a RAM-backed root and never crosses into a mount.
func freeInitramfs(log *slog.Logger) {
	var fs unix.Statfs_t
	if err := unix.Statfs("/", &fs); err != nil || (fs.Type != unix.RAMFS_MAGIC && fs.Type != unix.TMPFS_MAGIC) {
		log.Warn("root is not an initramfs; leaving it alone")
		return
	}
	var st unix.Stat_t
	if err := unix.Lstat("/", &st); err != nil {
		return
	}
	removeSameDevice("/", st.Dev)
}

func removeSameDevice(dir string, dev uint64) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if p == newRoot || unix.Lstat(p, &st) != nil || st.Dev != dev {
			continue // a mount point: not the initramfs's to delete
		}
		if e.IsDir() {
			removeSameDevice(p, dev)
			unix.Rmdir(p)
		} else {
			unix.Unlink(p)
		}
	}
}
