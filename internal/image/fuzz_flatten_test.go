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
)

// FuzzFlatten flattens two fuzzed layers (tar streams, lowest first). It
// must return (a PanicError is a failure), within the bounds, write
// nothing but its output, and the image must hold only clean relative
// names with no whiteout left in them: whiteouts and opaque markers are
// consumed, never written.
func FuzzFlatten(f *testing.F) {
	f.Fuzz(func(t *testing.T, lower, upper []byte) {
		work := t.TempDir()
		out, err := os.Create(filepath.Join(work, "out.ext4"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		layer := func(name string, b []byte) Layer {
			return Layer{Name: name, Size: int64(len(b)), Open: func(count func(int64)) (EntryReader, io.Closer, error) {
				return tar.NewReader(&countingReader{r: bytes.NewReader(b), fn: count}), io.NopCloser(nil), nil
			}}
		}
		var ferr error
		memBound(t, len(lower)+len(upper), func() {
			_, ferr = Flatten(context.Background(), []Layer{layer("lower", lower), layer("upper", upper)}, out,
				FlattenOptions{MaxBytes: 8 << 20, MaxEntries: 20000})
		})
		var pe *PanicError
		if errors.As(ferr, &pe) {
			t.Fatalf("flatten panicked: %v\n%s", pe.Value, pe.Stack)
		}
		if ents, _ := os.ReadDir(work); len(ents) != 1 {
			t.Fatalf("flatten left %d files in its directory, want only its output", len(ents))
		}
		if ferr != nil {
			return
		}
		fs, err := OpenExt4(out)
		if err != nil {
			t.Fatalf("flattened image does not open: %v", err)
		}
		w, err := newExt4Walker(fs, "/", false)
		if err != nil {
			t.Fatalf("flattened image: %v", err)
		}
		for {
			h, err := w.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("walk flattened image: %v", err)
			}
			checkName(t, h.Name)
			for _, part := range strings.Split(h.Name, "/") {
				if strings.HasPrefix(part, whiteoutPrefix) {
					t.Fatalf("whiteout name %q written into the image", h.Name)
				}
			}
		}
	})
}
