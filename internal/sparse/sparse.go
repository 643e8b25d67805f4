// Package sparse copies a file's data and not its holes: disk images
// (vms: snapshots, forks, warm clones) and guest memory (qemu: a fork's
// copy of a memfd) are mostly never-written space.
package sparse

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Copy makes dst (empty, open for writing) the size of src and copies
// src's data extents, found with SEEK_DATA/SEEK_HOLE, to the same
// offsets; the holes stay unallocated in dst. It returns the bytes
// copied. The cost is that of the allocated blocks: a mostly empty 8 GiB
// disk copies in milliseconds.
func Copy(dst, src *os.File) (int64, error) {
	fi, err := src.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if err := dst.Truncate(size); err != nil {
		return 0, err
	}
	var copied int64
	buf := make([]byte, 1<<20) // guest memory is copied while its VM is paused
	for off := int64(0); off < size; {
		data, err := unix.Seek(int(src.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return copied, fmt.Errorf("copy %s: seek data: %w", src.Name(), err)
		}
		hole, err := unix.Seek(int(src.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return copied, fmt.Errorf("copy %s: seek hole: %w", src.Name(), err)
		}
		n, err := io.CopyBuffer(io.NewOffsetWriter(dst, data), io.NewSectionReader(src, data, hole-data), buf)
		copied += n
		if err != nil {
			return copied, fmt.Errorf("copy %s to %s: %w", src.Name(), dst.Name(), err)
		}
		off = hole
	}
	return copied, nil
}
