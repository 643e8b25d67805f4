package vms

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/sparse"
)

// copyDisk copies a sparse disk image to dst (created or truncated),
// as `cp --reflink=auto --sparse=always` would: a reflink (FICLONE) where
// the filesystem shares extents (btrfs, xfs), else only the data extents
// (sparse.Copy), leaving the holes unallocated. On error dst is removed.
func copyDisk(dst, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
			err = diskFull(dst, err)
		}
	}()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		return nil
	}
	if _, err := sparse.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

// diskFull rewrites an out-of-space error so that it names where and
// how much space is left; other errors pass through.
func diskFull(path string, err error) error {
	var done *fullError
	if !errors.Is(err, syscall.ENOSPC) || errors.As(err, &done) {
		return err
	}
	var st unix.Statfs_t
	free := "unknown"
	dir := filepath.Dir(path)
	if unix.Statfs(dir, &st) == nil {
		free = config.FormatSize(int64(st.Bavail) * st.Bsize)
	}
	return &fullError{fmt.Errorf("no space left writing %s (%s free on that filesystem): free some space and try again: %w", path, free, err)}
}

// fullError is an out-of-space error already explained by diskFull.
type fullError struct{ error }

func (e *fullError) Unwrap() error { return e.error }
