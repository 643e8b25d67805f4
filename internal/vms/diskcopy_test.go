package vms

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/banger-dev/banger/internal/vmdir"
)

func TestCopyDiskKeepsDataAndHoles(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	f.Truncate(size)
	f.WriteAt(bytes.Repeat([]byte("a"), 4096), 0)
	f.WriteAt(bytes.Repeat([]byte("b"), 8192), 32<<20)
	f.WriteAt([]byte("end"), size-3)
	f.Close()
	os.WriteFile(dst, []byte("old content longer than nothing"), 0o600)
	if err := copyDisk(dst, src); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if !bytes.Equal(a, b) {
		t.Fatal("copy differs from the source")
	}
	if got := vmdir.Allocated(dst); got > 1<<20 {
		t.Errorf("the copy of a 64 MiB file with 12 KiB of data allocates %d bytes: holes were filled", got)
	}
}

func TestDiskFullNamesPathAndFreeSpace(t *testing.T) {
	dir := t.TempDir()
	err := diskFull(filepath.Join(dir, "x"), &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "free on that filesystem") {
		t.Fatalf("got %v", err)
	}
	other := errors.New("other")
	if diskFull("x", other) != other {
		t.Fatal("other errors must pass through")
	}
}
