package agent

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// mountModules mounts the kernel's module disk, when the host attached
// one, read-only at /lib/modules/<uname -r> of the new root, so modprobe
// (and the kernel's own module requests) find the whole module tree. It
// runs before switch_root, so an image whose init is the agent gets it
// too. It never fails the boot: a guest without it only lacks modules.
func (b *boot) mountModules() error {
	dev, ok := b.disks[proto.RoleModules]
	if !ok {
		return nil
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		b.log.Warn("module disk not mounted", "err", err)
		return nil
	}
	release := unix.ByteSliceToString(uts.Release[:])
	if err := mountModulesDisk(dev, newRoot, release); err != nil {
		b.log.Warn("module disk not mounted: modprobe finds no modules", "dev", dev, "err", err)
	}
	return nil
}

// mountModulesDisk mounts dev read-only on root/lib/modules/release,
// creating the directories. Paths are resolved inside root (openat2
// RESOLVE_IN_ROOT), so an image's absolute symlinks — /lib -> /usr/lib
// on merged-/usr systems — lead into the image, never into the
// initramfs.
func mountModulesDisk(dev, root, release string) error {
	fd, err := mkdirInRoot(root, path.Join("lib/modules", release))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	target := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(dev, target, "ext4", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount %s (ext4, ro) on %s/lib/modules/%s: %w", dev, root, release, err)
	}
	return nil
}

// mkdirInRoot creates rel (a clean relative path) under root as
// `mkdir -p` would, resolving every component as if root were /, and
// returns an O_PATH descriptor of the final directory.
func mkdirInRoot(root, rel string) (int, error) {
	if rel == "" || path.IsAbs(rel) || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") {
		return -1, fmt.Errorf("bad path %q", rel)
	}
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rootFD)
	open := func(p string) (int, error) {
		return unix.Openat2(rootFD, p, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT,
		})
	}
	parent, err := unix.Dup(rootFD)
	if err != nil {
		return -1, err
	}
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := open(prefix)
		if errors.Is(err, unix.ENOENT) {
			// mkdirat on a plain name never follows a symlink; a
			// dangling one answers EEXIST and the open below fails.
			if err := unix.Mkdirat(parent, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(parent)
				return -1, fmt.Errorf("mkdir %s/%s: %w", root, prefix, err)
			}
			fd, err = open(prefix)
		}
		unix.Close(parent)
		if err != nil {
			return -1, fmt.Errorf("open %s/%s: %w", root, prefix, err)
		}
		parent = fd
	}
	return parent, nil
}
