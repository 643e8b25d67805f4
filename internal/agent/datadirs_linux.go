package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// maxDataDirsFile bounds the image's data-directory list read at boot.
const maxDataDirsFile = 64 << 10

// mountDataDirs bind-mounts the directories the image lists in
// proto.DataDirsFile (Docker's storage in debian-bookworm-dev) from the
// overlay disk's ext4 — overlay2 cannot stack on the overlayfs root. It
// runs before switch_root, and never fails the boot: a directory it could
// not mount stays on the overlayfs root, where the program that needs it
// reports the problem.
func (b *boot) mountDataDirs() error {
	dirs, err := readDataDirs(newRoot)
	if err != nil {
		b.log.Warn("data directories not mounted", "err", err)
		return nil
	}
	if len(dirs) > 0 {
		if _, ok := b.disks[proto.RoleOverlay]; !ok {
			b.log.Warn("no overlay disk: data directories are on a tmpfs and lost at power-off")
		}
	}
	for _, d := range dirs {
		if err := bindDataDir(upperDir, newRoot, d); err != nil {
			b.log.Warn("data directory not mounted", "dir", "/"+d, "err", err)
		}
	}
	return nil
}

// readDataDirs reads and checks root's data-directory list; an image
// without one has none.
func readDataDirs(root string) ([]string, error) {
	b, err := readInRoot(root, proto.DataDirsFile[1:], maxDataDirsFile)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return proto.ParseDataDirs(b)
}

// bindDataDir bind-mounts disk/<proto.DataDirsDisk>/rel on root/rel,
// creating both. Both paths are resolved inside their own root (see
// mkdirInRoot): symlinks in the image or on the disk lead nowhere else.
func bindDataDir(disk, root, rel string) error {
	src, err := mkdirInRoot(disk, path.Join(proto.DataDirsDisk, rel))
	if err != nil {
		return err
	}
	defer unix.Close(src)
	dst, err := mkdirInRoot(root, rel)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", src), fmt.Sprintf("/proc/self/fd/%d", dst), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s/%s/%s on %s/%s: %w", disk, proto.DataDirsDisk, rel, root, rel, err)
	}
	return nil
}

// readInRoot reads the regular file rel (relative) resolved inside root,
// at most limit bytes.
func readInRoot(root, rel string, limit int64) ([]byte, error) {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rootFD)
	fd, err := unix.Openat2(rootFD, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", root, rel, err)
	}
	f := os.NewFile(uintptr(fd), path.Join(root, rel))
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s/%s is not a regular file", root, rel)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s/%s is larger than %d bytes", root, rel, limit)
	}
	return b, err
}
