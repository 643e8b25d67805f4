package sparse

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Data extents are copied to the same offsets, holes stay holes.
func TestCopyKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	src, err := os.Create(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const size = 64 << 20
	src.Truncate(size)
	a, b := bytes.Repeat([]byte("a"), 8192), bytes.Repeat([]byte("b"), 4096)
	src.WriteAt(a, 1<<20)
	src.WriteAt(b, 40<<20)
	dst, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	n, err := Copy(dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if n < int64(len(a)+len(b)) || n > 1<<20 {
		t.Errorf("copied %d bytes", n)
	}
	got, _ := os.ReadFile(dst.Name())
	want, _ := os.ReadFile(src.Name())
	if len(got) != size || !bytes.Equal(got, want) {
		t.Fatalf("dst differs from src (%d bytes)", len(got))
	}
	var st unix.Stat_t
	unix.Fstat(int(dst.Fd()), &st)
	if st.Blocks*512 > 2<<20 {
		t.Errorf("dst allocates %d bytes: the holes were written", st.Blocks*512)
	}
}
