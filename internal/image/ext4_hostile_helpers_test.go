package image

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Helpers that build small ext4 disks with mkfs.ext4 and then corrupt
// them the way a hostile guest could (it owns its overlay disk's blocks).

// mkfsT makes an ext4 image of size (e.g. "4M") with 1 KiB blocks from
// the tree fill writes into a temp directory.
func mkfsT(t testing.TB, size string, fill func(dir string), extra ...string) string {
	t.Helper()
	src := t.TempDir()
	fill(src)
	img := filepath.Join(t.TempDir(), "fs.ext4")
	args := append([]string{"-q", "-b", "1024", "-I", "256"}, extra...)
	args = append(args, "-d", src, img, size)
	if out, err := exec.Command("mkfs.ext4", args...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	return img
}

// openT opens an image with the reader (for finding what to corrupt).
func openT(t testing.TB, img string) (*Ext4, *os.File) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fs, err := OpenExt4(f)
	if err != nil {
		t.Fatal(err)
	}
	return fs, f
}

// inodeOffset is where inode n lives in the image.
func inodeOffset(t testing.TB, fs *Ext4, n uint32) int64 {
	t.Helper()
	g := int64(n-1) / fs.ipg
	desc := make([]byte, fs.descSize)
	if _, err := fs.r.ReadAt(desc, fs.gdtOffset+g*fs.descSize); err != nil {
		t.Fatal(err)
	}
	table := int64(binary.LittleEndian.Uint32(desc[8:]))
	return table*fs.blockSize + (int64(n-1)%fs.ipg)*fs.inodeSize
}

// patchT writes b at off of the image.
func patchT(t testing.TB, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// direntOffset finds the directory entry called name in directory dir
// (a linear, one-block directory) and returns its offset in the image.
func direntOffset(t testing.TB, fs *Ext4, dir, name string) int64 {
	t.Helper()
	in := statT(t.(*testing.T), fs, dir)
	exts, err := fs.extents(in)
	if err != nil || len(exts) == 0 {
		t.Fatalf("%s: extents %v %v", dir, exts, err)
	}
	blk := make([]byte, fs.blockSize)
	fs.r.ReadAt(blk, exts[0].pblk*fs.blockSize)
	for off := 0; off+8 <= len(blk); {
		rec := int(binary.LittleEndian.Uint16(blk[off+4:]))
		if n := int(blk[off+6]); string(blk[off+8:off+8+n]) == name {
			return exts[0].pblk*fs.blockSize + int64(off)
		}
		if rec < 8 {
			break
		}
		off += rec
	}
	t.Fatalf("%s has no entry %s", dir, name)
	return 0
}

// walkAll walks a whole image as promote does (all entries, all file
// data, all link targets) and returns the first error.
func walkAll(img string, upper bool) error {
	f, err := os.Open(img)
	if err != nil {
		return err
	}
	defer f.Close()
	fs, err := OpenExt4(f)
	if err != nil {
		return err
	}
	w, err := newExt4Walker(fs, "/", upper)
	if err != nil {
		return err
	}
	for {
		h, err := w.Next()
		if err != nil {
			return err
		}
		if h.Size > 0 {
			if _, err := copyLimited(w, h.Size); err != nil {
				return err
			}
		}
	}
}

func copyLimited(r interface{ Read([]byte) (int, error) }, n int64) (int64, error) {
	buf := make([]byte, 32<<10)
	var done int64
	for done < n {
		m, err := r.Read(buf[:min(int64(len(buf)), n-done)])
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// bounded runs fn and fails the test if it panics, takes longer than d or
// allocates more than maxAlloc bytes; it returns fn's error. fn runs in
// its own goroutine so that a runaway reader (the bugs these tests guard
// against) fails the test at the deadline instead of hanging it.
func bounded(t *testing.T, d time.Duration, maxAlloc uint64, fn func() error) error {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- &PanicError{Value: v}
			}
		}()
		done <- fn()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		runtime.ReadMemStats(&after)
		t.Fatalf("still running after %s (%d MiB allocated): unbounded", d, (after.TotalAlloc-before.TotalAlloc)>>20)
	}
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > maxAlloc {
		t.Errorf("allocated %d MiB, want at most %d MiB", a>>20, maxAlloc>>20)
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		t.Fatalf("panicked: %v", pe.Value)
	}
	return err
}
