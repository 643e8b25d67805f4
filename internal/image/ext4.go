package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

// ext4 superblock layout (offsets inside the superblock, which starts at
// byte 1024 of the device).
const (
	superblockOffset = 1024
	sbMagicOffset    = 0x38
	sbUUIDOffset     = 0x68
	ext4Magic        = 0xEF53
)

// ReadExt4UUID returns the filesystem UUID of the ext4 image at path,
// formatted 8-4-4-4-12. It returns "" (and no error) for an all-zero UUID:
// tar2ext4 writes none, and the guest agent finds the base image as "the
// ext4 disk left over" rather than by UUID.
func ReadExt4UUID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sb := make([]byte, sbUUIDOffset+16)
	if _, err := f.ReadAt(sb, superblockOffset); err != nil {
		return "", fmt.Errorf("read ext4 superblock of %s: %w", path, err)
	}
	if binary.LittleEndian.Uint16(sb[sbMagicOffset:]) != ext4Magic {
		return "", fmt.Errorf("%s: not an ext2/3/4 filesystem", path)
	}
	u := sb[sbUUIDOffset : sbUUIDOffset+16]
	if bytes.Equal(u, make([]byte, 16)) {
		return "", nil
	}
	h := hex.EncodeToString(u)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// MakeExt4 creates a sparse file of sizeBytes at path and formats it as
// ext4 with the given UUID (the agent finds per-VM disks by it) and label.
// It refuses to overwrite an existing file: these are the VMs' own disks,
// and a retried create must never wipe a user's work.
func MakeExt4(ctx context.Context, path string, sizeBytes int64, uuid, label string) error {
	if !uuidRE.MatchString(uuid) {
		return fmt.Errorf("make ext4 %s: bad uuid %q", path, uuid)
	}
	if len(label) > 16 {
		return fmt.Errorf("make ext4 %s: label %q longer than 16 bytes", path, label)
	}
	if sizeBytes < 8<<20 {
		return fmt.Errorf("make ext4 %s: size %d too small", path, sizeBytes)
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return errors.New("make ext4: mkfs.ext4 not found; install the e2fsprogs package (apt-get install e2fsprogs)")
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("make ext4 %s: %w", path, os.ErrExist)
	}
	// 0600: a work disk holds the user's /root, private like a home dir.
	err = writeAtomic(path, 0o600, func(f *os.File) error {
		// Truncate only sets the size: the file stays sparse, so a disk
		// costs what the guest writes, not what it could hold.
		if err := f.Truncate(sizeBytes); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, mkfs, "-q", "-F",
			"-U", uuid, "-L", label, "-m", "0",
			// Lazy init: mkfs writes only a few MiB of metadata and the
			// kernel zeroes the rest in the background, so creating a VM
			// costs the same whatever the disk size. root_owner pins /
			// to root even when mkfs runs as the user.
			"-E", "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0",
			f.Name())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("mkfs.ext4: %w: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("make ext4 %s: %w", path, err)
	}
	return nil
}

// writeAtomic creates a temporary file next to path, lets fill write it,
// sets mode, fsyncs and renames it into place (and fsyncs the directory). On any
// failure the temporary file is removed, so path either keeps its old
// contents or gets complete new ones.
func writeAtomic(path string, mode os.FileMode, fill func(f *os.File) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // durability of the rename; not fatal where unsupported
		d.Close()
	}
	return nil
}
