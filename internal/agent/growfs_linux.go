package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64): grow a
// mounted ext4 filesystem to the given block count (online resize).
// golang.org/x/sys/unix does not define it.
const ext4IocResizeFS = 0x40086610

// growDisks grows the overlay and work filesystems to fill their disks.
// `vm set --disk-size` only extends the host's sparse files: the host never
// runs e2fsck or resize2fs on metadata a guest wrote, so the guest's own
// kernel grows the filesystem here, online, at the next boot. A failure is
// logged and never fails the boot: the filesystem keeps its old size.
func (b *boot) growDisks() error {
	for _, d := range []struct{ role, mnt string }{
		{proto.RoleOverlay, upperDir},
		{proto.RoleWork, filepath.Join(newRoot, "root")},
	} {
		dev, ok := b.disks[d.role]
		if !ok {
			continue
		}
		from, to, err := growExt4(dev, d.mnt)
		switch {
		case err != nil:
			b.log.Error("grow filesystem", "disk", d.role, "dev", dev, "err", err)
		case to > from:
			b.log.Info("grew filesystem", "disk", d.role, "dev", dev, "from_blocks", from, "to_blocks", to)
		}
	}
	return nil
}

// growExt4 grows the ext4 filesystem on dev, mounted at mnt, to the size
// of dev. It returns the block counts before and after (equal when there
// was nothing to do).
func growExt4(dev, mnt string) (from, to uint64, err error) {
	from, to, err = ext4GrowTarget(dev)
	if err != nil || to <= from {
		return from, from, err
	}
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return from, from, fmt.Errorf("open %s: %w", mnt, err)
	}
	defer unix.Close(fd)
	n := to
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ext4IocResizeFS, uintptr(unsafe.Pointer(&n))); e != 0 {
		return from, from, fmt.Errorf("resize %s from %d to %d blocks: %w", mnt, from, to, e)
	}
	return from, to, nil
}

// ext4GrowTarget reads the filesystem's block count from dev's superblock
// and the number of whole blocks dev holds.
func ext4GrowTarget(dev string) (blocks, fits uint64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, 0, fmt.Errorf("read superblock of %s: %w", dev, err)
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return 0, 0, fmt.Errorf("%s: not ext4 (bad superblock magic)", dev)
	}
	logBlock := binary.LittleEndian.Uint32(sb[0x18:])
	if logBlock > 6 { // 1 KiB << 6 = 64 KiB, ext4's largest block size
		return 0, 0, fmt.Errorf("%s: implausible block size 2^%d KiB", dev, logBlock)
	}
	blocks = uint64(binary.LittleEndian.Uint32(sb[0x04:]))
	if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT
		blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	size, err := deviceSize(f)
	if err != nil {
		return 0, 0, err
	}
	return blocks, size >> (10 + logBlock), nil
}

// deviceSize is a block device's size (BLKGETSIZE64), or a regular file's.
func deviceSize(f *os.File) (uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode().IsRegular() {
		return uint64(fi.Size()), nil
	}
	var size uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
		return 0, fmt.Errorf("size of %s: %w", f.Name(), e)
	}
	if size == 0 {
		return 0, errors.New("size of " + f.Name() + ": 0 bytes")
	}
	return size, nil
}
