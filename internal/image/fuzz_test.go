package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for what banger reads from guests and registries. Their
// seed corpora live in testdata/fuzz/<Name>/, so plain `go test` replays
// them; `go test -fuzz '^FuzzX$' ./internal/image/` explores further.
//
// The ext4 seeds are small mkfs.ext4 images of upperTree (-b 1024 -I 256
// -N 32 -O ^has_journal,^resize_inode, 128K, trailing zero blocks cut)
// plus, for each hostile case in ext4_hostile_test.go, that image with
// the case's corruption applied; the tar seeds are layers with
// whiteouts, opaque markers, hard and symbolic links and escapes.

const (
	fuzzTime     = 10 * time.Second // per input: generous for a loaded CI machine
	fuzzAllocMin = 64 << 20         // allocation bound: this plus 64 bytes per input byte
)

// memBound measures what fn allocates and how long it takes, and fails
// when an input of n bytes costs more than the bounds allow: the reader
// must not amplify a small input into large work.
func memBound(t *testing.T, n int, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(fuzzTime):
		// A runaway input: end the process with every goroutine's stack,
		// so the fuzzer records the input as a crasher.
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("a %d-byte input still running after %s\n%s", n, fuzzTime, buf[:runtime.Stack(buf, true)]))
	}
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	if a, limit := after.TotalAlloc-before.TotalAlloc, uint64(fuzzAllocMin+64*n); a > limit {
		t.Fatalf("a %d-byte input allocated %d MiB (limit %d MiB)", n, a>>20, limit>>20)
	}
	if el > fuzzTime {
		t.Fatalf("a %d-byte input took %s", n, el)
	}
}

// checkName asserts that a name the walker or flattener produced is clean
// and relative: it can only ever name something inside the image root.
func checkName(t *testing.T, name string) {
	t.Helper()
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") || strings.ContainsRune(name, 0) {
		t.Fatalf("entry name %q is not a clean relative path", name)
	}
	if len(name) > maxPathLen {
		t.Fatalf("entry name of %d bytes", len(name))
	}
}

// FuzzExt4Reader opens a disk, walks it as promote does (both as an image
// and as an overlay upper directory), reads every file and link target,
// and looks up paths and xattrs.
func FuzzExt4Reader(f *testing.F) {
	f.Fuzz(func(t *testing.T, disk []byte) {
		memBound(t, len(disk), func() {
			fs, err := OpenExt4(bytes.NewReader(disk))
			if err != nil {
				return
			}
			for _, p := range []string{"/", "/upper", "/upper/d/x", "/sbin/init"} {
				if in, err := fs.Lookup(p); err == nil {
					fs.Xattrs(in)
					if in.Mode&modeTypeMask == modeSymlink {
						if l, err := fs.Readlink(in); err == nil && len(l) > maxPathLen {
							t.Fatalf("%s: link target of %d bytes", p, len(l))
						}
					}
				}
			}
			for _, dir := range []string{"/", "/upper"} {
				fuzzWalk(t, fs, dir, dir == "/upper")
			}
			// Inspect recovers a panic into a PanicError: that is a reader
			// bug all the same, so it fails here.
			var pe *PanicError
			if _, err := Inspect(writeTemp(t, disk)); errors.As(err, &pe) {
				t.Fatalf("inspect panicked: %v\n%s", pe.Value, pe.Stack)
			}
		})
	})
}

// fuzzWalk walks the tree under dir, reading every file to its end.
func fuzzWalk(t *testing.T, fs *Ext4, dir string, upper bool) {
	t.Helper()
	w, err := newExt4Walker(fs, dir, upper)
	if err != nil {
		return
	}
	dirs := 0
	for {
		h, err := w.Next()
		if err != nil {
			return
		}
		checkName(t, h.Name)
		if h.Typeflag == tar.TypeDir {
			if dirs++; int64(dirs) > int64(fs.inodeCount) {
				t.Fatalf("walked %d directories on a filesystem of %d inodes", dirs, fs.inodeCount)
			}
		}
		if h.Size < 0 {
			t.Fatalf("%s: size %d", h.Name, h.Size)
		}
		if h.Typeflag == tar.TypeReg {
			// A regular file may be sparse (its size is bounded by the
			// flattener's byte budget, not the disk): read a bounded prefix.
			if _, err := io.Copy(io.Discard, io.LimitReader(w, 1<<20)); err != nil {
				return
			}
		}
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "disk.ext4")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fuzzBase is the image FuzzPromote promotes onto, made once.
var fuzzBase struct {
	path string
	err  error
}

// FuzzPromote promotes a fuzzed overlay disk onto a fixed image: promote
// must return (never panic: a PanicError is a failure here), within the
// bounds, write nothing but its output, and produce an image the reader
// can walk with clean names only.
func FuzzPromote(f *testing.F) {
	dir := f.TempDir()
	base, err := os.Create(filepath.Join(dir, "base.ext4"))
	if err != nil {
		f.Fatal(err)
	}
	b := tarBytes(f, []tent{tdir("etc/"), tfile("etc/keep", "k"), tdir("opt/"), tfile("opt/a", "a"), tsym("sbin", "usr/sbin")})
	l := Layer{Name: "base", Size: int64(len(b)), Open: func(count func(int64)) (EntryReader, io.Closer, error) {
		return tar.NewReader(bytes.NewReader(b)), io.NopCloser(nil), nil
	}}
	if _, err := Flatten(context.Background(), []Layer{l}, base, FlattenOptions{}); err != nil {
		f.Fatal(err)
	}
	base.Close()
	f.Fuzz(func(t *testing.T, disk []byte) {
		work := t.TempDir()
		overlay := filepath.Join(work, "overlay.ext4")
		if err := os.WriteFile(overlay, disk, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(work, "out.ext4"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		var perr error
		memBound(t, len(disk), func() {
			_, perr = Promote(context.Background(), base.Name(), overlay, out, FlattenOptions{MaxBytes: 8 << 20, KeepDevices: true})
		})
		var pe *PanicError
		if errors.As(perr, &pe) {
			t.Fatalf("promote panicked: %v\n%s", pe.Value, pe.Stack)
		}
		if ents, _ := os.ReadDir(work); len(ents) != 2 {
			t.Fatalf("promote left %d files in its directory, want only the overlay and the output", len(ents))
		}
		if perr != nil {
			return
		}
		fs, err := OpenExt4(out)
		if err != nil {
			t.Fatalf("promoted image does not open: %v", err)
		}
		fuzzWalk(t, fs, "/", false)
	})
}
