package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Regression tests for issue 11 findings 1 and 2: a guest writes its
// overlay disk, so `image promote` reads a hostile ext4. Each case is a
// proof of concept that panicked the reader (killing bangerd) or made it
// allocate gigabytes or loop forever; now each is an error for that one
// promote, within a time and memory bound.

// promoteT promotes overlay onto a small base image.
func promoteT(t *testing.T, overlay string) error {
	t.Helper()
	tmp := t.TempDir()
	base, err := os.Create(filepath.Join(tmp, "base.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	if _, err := Flatten(context.Background(), []Layer{memLayer(t, "base", []tent{tdir("etc/"), tfile("etc/keep", "k")})}, base, FlattenOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(tmp, "merged.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	_, err = Promote(context.Background(), base.Name(), overlay, out, FlattenOptions{})
	return err
}

// upperTree is a VM overlay as the agent leaves it: /upper and /work.
func upperTree(dir string) {
	for _, d := range []string{"upper/d", "work"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "upper/d/x"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "upper/small"), []byte("hi"), 0o644)
	os.WriteFile(filepath.Join(dir, "upper/data"), bytes.Repeat([]byte("z"), 16<<10), 0o644)
	os.Symlink("target", filepath.Join(dir, "upper/sl"))
}

const (
	hostileTime  = 20 * time.Second
	hostileAlloc = 64 << 20
)

// hostileCase is one proof of concept: an overlay made by upperTree, then
// corrupted as a guest could; want is in the error promote must return.
type hostileCase struct {
	name    string
	mkfs    []string
	corrupt func(t *testing.T, img string)
	want    string
}

func hostileCases() []hostileCase {
	ino := func(t *testing.T, img, p string) (*Ext4, int64) {
		fs, _ := openT(t, img)
		return fs, inodeOffset(t, fs, statT(t, fs, p).Num)
	}
	return []hostileCase{
		{"s_inode_size 129", nil, func(t *testing.T, img string) {
			patchT(t, img, superblockOffset+sbInodeSizeOff, le16(129))
		}, "inode size 129"},
		{"s_inode_size 136 and i_extra_isize past it", nil, func(t *testing.T, img string) {
			fs, _ := openT(t, img)
			root := inodeOffset(t, fs, ext4RootInode)
			table := root - fs.inodeSize // inode 2 is the second of group 0
			patchT(t, img, superblockOffset+sbInodeSizeOff, le16(136))
			patchT(t, img, table+136+0x80, le16(32))
		}, "inode size 136"},
		{"i_extra_isize larger than the inode", nil, func(t *testing.T, img string) {
			_, off := ino(t, img, "/upper/d")
			patchT(t, img, off+0x80, le16(0x200))
		}, "i_extra_isize"},
		{"negative i_size on a fast symlink", nil, func(t *testing.T, img string) {
			_, off := ino(t, img, "/upper/sl")
			patchT(t, img, off+0x6C, le32(0x80000000))
		}, "negative size"},
		{"negative i_size on an inline-data file", []string{"-O", "inline_data"}, func(t *testing.T, img string) {
			fs, off := ino(t, img, "/upper/small")
			if statT(t, fs, "/upper/small").flags&flagInlineData == 0 {
				t.Fatal("mkfs did not store /upper/small inline")
			}
			patchT(t, img, off+0x6C, le32(0x80000000))
		}, "negative size"},
		{"extent tree DAG (index entries sharing one child)", nil, func(t *testing.T, img string) {
			fs, off := ino(t, img, "/upper/data")
			exts, err := fs.extents(statT(t, fs, "/upper/data"))
			if err != nil || len(exts) == 0 || exts[0].n < 6 {
				t.Fatalf("data extents %v %v", exts, err)
			}
			p := exts[0].pblk
			// Five index levels, every entry pointing at the next level's
			// one block: 4 × 84^5 ≈ 1.7e10 extents when walked as a tree.
			per := int((fs.blockSize - 12) / 12)
			for lvl := 0; lvl < 5; lvl++ {
				depth := 4 - lvl
				b := extentHeader(per, depth)
				for i := 0; i < per; i++ {
					if depth > 0 {
						b = append(b, le32(0)...)
						b = append(b, le32(uint32(p)+uint32(lvl)+1)...)
						b = append(b, 0, 0, 0, 0)
					} else {
						b = append(b, le32(uint32(i))...)
						b = append(b, le16(1)...)
						b = append(b, 0, 0)
						b = append(b, le32(uint32(p)+5)...)
					}
				}
				patchT(t, img, (p+int64(lvl))*fs.blockSize, b)
			}
			root := extentHeader(4, 5)
			for i := 0; i < 4; i++ {
				root = append(root, le32(0)...)
				root = append(root, le32(uint32(p))...)
				root = append(root, 0, 0, 0, 0)
			}
			patchT(t, img, off+0x28, root)
		}, "referenced twice"},
		{"directory claiming 1 GiB", nil, func(t *testing.T, img string) {
			_, off := ino(t, img, "/upper/d")
			patchT(t, img, off+0x04, le32(1<<30))
		}, "directory of 1073741824 bytes"},
		{"directory with holes", nil, func(t *testing.T, img string) {
			_, off := ino(t, img, "/upper/d")
			patchT(t, img, off+0x04, le32(3<<20))
		}, "corrupt directory entry"},
		{"directory entry pointing at an ancestor", nil, func(t *testing.T, img string) {
			fs, _ := openT(t, img)
			upper := statT(t, fs, "/upper").Num
			patchT(t, img, direntOffset(t, fs, "/upper/d", "x"), le32(upper))
		}, "directory loop"},
	}
}

func TestPromoteHostileOverlay(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			img := mkfsT(t, "4M", upperTree, c.mkfs...)
			c.corrupt(t, img)
			err := bounded(t, hostileTime, hostileAlloc, func() error { return promoteT(t, img) })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("promote: %v, want an error about %q", err, c.want)
			}
			// The reader alone, as image inspection and export use it.
			if err := bounded(t, hostileTime, hostileAlloc, func() error { return walkAll(img, true) }); err == nil {
				t.Errorf("walk: no error")
			}
		})
	}
}

func extentHeader(entries, depth int) []byte {
	b := le16(extentMagic)
	b = append(b, le16(uint16(entries))...)
	b = append(b, le16(uint16(entries))...)
	b = append(b, le16(uint16(depth))...)
	return append(b, 0, 0, 0, 0)
}

// panicReader stands for a reader bug that a hostile disk reaches.
type panicReader struct{}

func (panicReader) Next() (*tar.Header, error) { panic("index out of range [129] with length 129") }
func (panicReader) Read([]byte) (int, error)   { return 0, io.EOF }

// TestFlattenRecoversPanic: a panic while reading a layer is an error for
// that flatten (the daemon logs the stack), not a dead daemon, and the
// converter goroutine is released.
func TestFlattenRecoversPanic(t *testing.T) {
	out, err := os.Create(filepath.Join(t.TempDir(), "img.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	l := Layer{Name: "bad", Open: func(func(int64)) (EntryReader, io.Closer, error) {
		return panicReader{}, io.NopCloser(nil), nil
	}}
	_, err = Flatten(context.Background(), []Layer{l}, out, FlattenOptions{})
	var pe *PanicError
	if !errors.As(err, &pe) || len(pe.Stack) == 0 || !strings.Contains(err.Error(), "index out of range") {
		t.Fatalf("flatten: %v, want a PanicError with a stack", err)
	}
}
