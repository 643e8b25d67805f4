package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Promote turns a stopped VM's disk state into a new image: the image it
// was created from (baseImage) with the VM's overlay disk's upper layer
// (overlayDisk:/upper, as banger-agent assembles the root) applied on top,
// written as one ext4 to out.
//
// Both disks are read with the pure-Go ext4 reader and merged by the same
// flattener as OCI layers (overlayfs whiteouts and opaque directories are
// the OCI ones in another spelling), so nothing is mounted, nothing needs
// root and no guest file is unpacked on the host. Device nodes are kept:
// both layers come from banger's own images and VMs.
//
// The overlay disk was written by the guest, so it is hostile input: the
// reader checks what it reads, and a panic all the same (a reader bug)
// becomes a *PanicError for this call rather than a dead daemon.
func Promote(ctx context.Context, baseImage, overlayDisk string, out *os.File, opts FlattenOptions) (_ FlattenResult, err error) {
	defer recoverInto(&err)
	var layers []Layer
	for _, d := range []struct {
		path, dir string
		upper     bool
	}{{baseImage, "/", false}, {overlayDisk, "/upper", true}} {
		l, err := ext4Layer(d.path, d.dir, d.upper)
		if errors.Is(err, errNoEntry) && d.upper {
			continue // the VM never booted far enough to write anything
		}
		if err != nil {
			return FlattenResult{}, fmt.Errorf("%s: %w", d.path, err)
		}
		layers = append(layers, l)
	}
	opts.KeepDevices = true
	return Flatten(ctx, layers, out, opts)
}

// ext4Layer is a Layer reading the tree under dir of an ext4 image file.
// Its size (for progress) is the file's allocated bytes, an upper bound
// of what walking it reads.
func ext4Layer(file, dir string, upper bool) (Layer, error) {
	f, err := os.Open(file)
	if err != nil {
		return Layer{}, err
	}
	defer f.Close()
	fs, err := OpenExt4(f)
	if err != nil {
		return Layer{}, err
	}
	if _, err := fs.Lookup(dir); err != nil {
		return Layer{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return Layer{}, err
	}
	size := st.Size()
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		size = min(size, sys.Blocks*512)
	}
	name := file + ":" + dir
	return Layer{Name: name, Size: size, Open: func(count func(int64)) (EntryReader, io.Closer, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, err
		}
		fs, err := OpenExt4(&countingReaderAt{r: f, fn: count})
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		w, err := newExt4Walker(fs, dir, upper)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return w, f, nil
	}}, nil
}

type countingReaderAt struct {
	r  io.ReaderAt
	fn func(int64)
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.fn(int64(n))
	return n, err
}

// Inspection is what banger records about an image's contents.
type Inspection struct {
	Init, InitTarget string // as in FlattenResult
	HasSSHD          bool
}

// Inspect looks for an init and an sshd in an ext4 image (for images
// registered from a file rather than built or pulled by banger).
func Inspect(file string) (in Inspection, err error) {
	defer recoverInto(&err)
	f, err := os.Open(file)
	if err != nil {
		return in, err
	}
	defer f.Close()
	fs, err := OpenExt4(f)
	if err != nil {
		return in, fmt.Errorf("%s: %w", file, err)
	}
	b := findBootFiles(func(p string) pathNode {
		n, err := fs.Lookup(p)
		if err != nil {
			return pathNode{}
		}
		node := pathNode{exists: true, exec: n.Mode&modeTypeMask == modeReg && n.Mode&0o111 != 0}
		if n.Mode&modeTypeMask == modeSymlink {
			node.symlink = true
			if node.link, err = fs.Readlink(n); err != nil {
				return pathNode{}
			}
		}
		return node
	})
	in.Init, in.InitTarget, in.HasSSHD = b.Init, b.InitTarget, b.HasSSHD
	return in, nil
}

// Size lets OpenExt4 bound the filesystem by the file's real size.
func (c *countingReaderAt) Size() int64 { return readerSize(c.r) }
