package image

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
)

// Bounds on what a layer (or a disk read as one) may describe. Work per
// entry grows with its path's depth (every ancestor is looked up), so
// without them one tar entry named "a/"×32768+"f" (68 KB of PAX name)
// took minutes and gigabytes to flatten.
const (
	// maxPathLen is Linux's PATH_MAX: no process in the guest could open a
	// longer path, so no image needs one. It bounds entry names, hard
	// link targets and symlink targets.
	maxPathLen = 4096
	// maxPathDepth bounds the components of a path. PATH_MAX alone allows
	// 2048 ("a/a/…"); real images stay far below 100.
	maxPathDepth = 1024
	// maxLayers bounds an image's layer count. Docker's layer store
	// refuses chains longer than 125 (moby layer/layer_store.go,
	// maxLayerDepth, to stay under overlayfs's 128 lower directories);
	// 128 accepts everything Docker can run.
	maxLayers = 128
	// maxConfigSize bounds an image config blob. Configs are a few KiB
	// (history of a few hundred layers stays under 1 MiB).
	maxConfigSize = 8 << 20
)

// checkEntryPath refuses a tar entry name (before cleaning) that is too
// long or too deep, or that has a whiteout name as a non-final component:
// whiteouts and opaque markers are files, never directories (OCI image
// spec, "Whiteouts"), and a directory so named would survive into the
// image where a later promote reads it as a marker. Such a layer is
// crafted or broken, so it is refused rather than silently altered.
func checkEntryPath(name string) error {
	if len(name) > maxPathLen {
		return fmt.Errorf("entry %.64q…: name of %d bytes is longer than PATH_MAX (%d), refused", name, len(name), maxPathLen)
	}
	parts := strings.Split(strings.Trim(name, "/"), "/")
	if len(parts) > maxPathDepth {
		return fmt.Errorf("entry %.64q…: %d path components, more than %d, refused", name, len(parts), maxPathDepth)
	}
	for _, p := range parts[:len(parts)-1] {
		if strings.HasPrefix(p, whiteoutPrefix) {
			return fmt.Errorf("entry %q: whiteout name %q used as a directory, refused", name, p)
		}
	}
	return nil
}

// PanicError is a panic in the ext4 reader or the flattener turned into an
// error for the one request that hit it: a disk a guest wrote must never
// bring the daemon down, even through a reader bug.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error while reading the disk (a banger bug; the daemon log has the stack): %v", e.Value)
}

// recoverInto turns a panic of the calling goroutine into *err.
func recoverInto(err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Value: v, Stack: debug.Stack()}
	}
}

// convertTar writes the merged tar stream as ext4 (a variable so that a
// test can make it panic).
var convertTar = func(r io.Reader, out *os.File) error {
	return tar2ext4.ConvertTarToExt4(r, out, tar2ext4.MaximumDiskSize(maxImageSize))
}

// convertSafe is convertTar with a panic turned into an error: the
// converter runs in its own goroutine, where runSafe's recover does not
// reach, on names and xattrs a guest or a registry chose.
func convertSafe(r io.Reader, out *os.File) (err error) {
	defer recoverInto(&err)
	return convertTar(r, out)
}
