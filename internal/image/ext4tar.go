package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// ext4Walker presents a directory tree of an ext4 image as a stream of tar
// entries (Next/Read, like *tar.Reader), so the flattener can merge an
// image with a VM's overlay exactly as it merges OCI layers. Hard links
// (inodes seen before) become TypeLink entries.
//
// With overlayUpper, the tree is an overlayfs upper directory: whiteouts
// (character devices 0/0) become ".wh.NAME" entries and opaque directories
// (trusted.overlay.opaque=y) get a ".wh..wh..opq" entry, the OCI spelling
// of the same facts. Renamed directories (redirect_dir) and metadata-only
// copy-ups (metacopy) cannot be expressed that way and are refused.
type ext4Walker struct {
	fs           *Ext4
	overlayUpper bool
	stack        []walkItem
	queue        []*tar.Header
	cur          io.Reader
	links        map[uint32]string
	dirs         map[uint32]bool // directories walked: a revisit is a loop
	skipped      []string
}

type walkItem struct {
	name string // relative to the walk root, "." for the root
	ino  uint32
}

// newExt4Walker walks the tree under dir (an absolute path in fs).
func newExt4Walker(fs *Ext4, dir string, overlayUpper bool) (*ext4Walker, error) {
	in, err := fs.Lookup(dir)
	if err != nil {
		return nil, err
	}
	if !in.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &ext4Walker{fs: fs, overlayUpper: overlayUpper, stack: []walkItem{{".", in.Num}},
		links: map[uint32]string{}, dirs: map[uint32]bool{}}, nil
}

func (w *ext4Walker) Read(p []byte) (int, error) {
	if w.cur == nil {
		return 0, io.EOF
	}
	return w.cur.Read(p)
}

// Next returns the next entry; directories come before their contents.
func (w *ext4Walker) Next() (*tar.Header, error) {
	w.cur = nil
	for {
		if len(w.queue) > 0 {
			h := w.queue[0]
			w.queue = w.queue[1:]
			return h, nil
		}
		if len(w.stack) == 0 {
			return nil, io.EOF
		}
		it := w.stack[len(w.stack)-1]
		w.stack = w.stack[:len(w.stack)-1]
		h, err := w.entry(it)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.name, err)
		}
		if h != nil {
			return h, nil
		}
	}
}

// entry builds the header of one inode (nil to skip it) and queues a
// directory's children.
func (w *ext4Walker) entry(it walkItem) (*tar.Header, error) {
	in, err := w.fs.Inode(it.ino)
	if err != nil {
		return nil, err
	}
	h := &tar.Header{
		Name: it.name, Mode: int64(in.Mode &^ modeTypeMask), Uid: int(in.UID), Gid: int(in.GID),
		ModTime: in.Mtime, AccessTime: in.Atime, ChangeTime: in.Ctime, Format: tar.FormatPAX,
	}
	xs, err := w.fs.Xattrs(in)
	if err != nil {
		return nil, err
	}
	for k, v := range xs {
		if w.overlayUpper && (k == "trusted.overlay.redirect" || k == "trusted.overlay.metacopy") {
			return nil, fmt.Errorf("the overlay has %s, which a merged image cannot express (renamed directory or metadata-only copy-up)", k)
		}
		if isOverlayXattr(k) || k == "system.data" {
			continue // overlayfs bookkeeping, or inline data
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = string(v)
	}
	switch in.Mode & modeTypeMask {
	case modeDir:
		h.Typeflag = tar.TypeDir
		// ext4 has no hard links to directories: a directory reached twice
		// is an entry pointing back at an ancestor (or a sibling's
		// subtree), which would be walked forever.
		if w.dirs[in.Num] {
			return nil, fmt.Errorf("directory inode %d is reached twice (a directory loop): the disk is corrupt", in.Num)
		}
		w.dirs[in.Num] = true
		ents, err := w.fs.ReadDir(in)
		if err != nil {
			return nil, err
		}
		// Reverse name order on the stack pops children in name order:
		// deterministic output whatever the directory's hash order.
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name > ents[j].Name })
		for _, d := range ents {
			if it.name == "." && (d.Name == "lost+found") {
				continue // mkfs's, not the guest's
			}
			if strings.HasPrefix(d.Name, whiteoutPrefix) {
				// The flattener would read it as a whiteout (or opaque
				// marker) of the layer, not as a file.
				return nil, fmt.Errorf("%q is named like an OCI whiteout (%s*), which an image cannot hold", path.Join(it.name, d.Name), whiteoutPrefix)
			}
			w.stack = append(w.stack, walkItem{path.Join(it.name, d.Name), d.Inode})
		}
		if w.overlayUpper && string(xs["trusted.overlay.opaque"]) == "y" {
			w.queue = append(w.queue, &tar.Header{Name: path.Join(it.name, opaqueMarker), Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		}
	case modeReg:
		if first, ok := w.links[in.Num]; ok {
			h.Typeflag, h.Linkname, h.Mode = tar.TypeLink, first, 0
			return h, nil
		}
		if in.Links > 1 {
			w.links[in.Num] = it.name
		}
		r, err := w.fs.Open(in)
		if err != nil {
			return nil, err
		}
		h.Typeflag, h.Size, w.cur = tar.TypeReg, in.Size, r
	case modeSymlink:
		target, err := w.fs.Readlink(in)
		if err != nil {
			return nil, err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
	case modeChar, modeBlock:
		if w.overlayUpper && in.Mode&modeTypeMask == modeChar && in.Major == 0 && in.Minor == 0 {
			dir, base := path.Split(it.name)
			return &tar.Header{Name: path.Join(dir, whiteoutPrefix+base), Typeflag: tar.TypeReg, Format: tar.FormatPAX}, nil
		}
		h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(in.Major), int64(in.Minor)
		if in.Mode&modeTypeMask == modeBlock {
			h.Typeflag = tar.TypeBlock
		}
	case modeFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		// Sockets have no tar form; they are recreated by whoever listens.
		w.skipped = append(w.skipped, it.name)
		return nil, nil
	}
	return h, nil
}

// isOverlayXattr reports overlayfs's own attributes (trusted.overlay.* or,
// with the userxattr mount option, user.overlay.*). In an image they would
// be read as overlay metadata of the lower layer, so they never pass.
func isOverlayXattr(k string) bool {
	return strings.HasPrefix(k, "trusted.overlay.") || strings.HasPrefix(k, "user.overlay.")
}

// readImageFile reads one small file from an ext4 image (following no
// symlinks); for tests and manifest checks.
func readImageFile(fs *Ext4, p string, limit int64) ([]byte, error) {
	in, err := fs.Lookup(p)
	if err != nil {
		return nil, err
	}
	r, err := fs.Open(in)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	_, err = io.Copy(&b, io.LimitReader(r, limit))
	return b.Bytes(), err
}

// WriteExt4Tar writes the whole tree of an ext4 image as a tar stream: a
// way to hand a banger image to tools that take tarballs (and how the
// end-to-end tests turn the golden image into OCI layers).
func WriteExt4Tar(file string, w io.Writer) (err error) {
	defer recoverInto(&err)
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fs, err := OpenExt4(f)
	if err != nil {
		return err
	}
	wk, err := newExt4Walker(fs, "/", false)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for {
		h, err := wk.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			if _, err := io.CopyN(tw, wk, h.Size); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		}
	}
	return tw.Close()
}
