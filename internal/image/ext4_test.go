package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestMakeExt4UUIDRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "work.ext4")
	const uuid = "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8"
	if err := MakeExt4(context.Background(), p, 1<<30, uuid, "banger-work"); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExt4UUID(p)
	if err != nil || got != uuid {
		t.Fatalf("uuid = %q, %v", got, err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 1<<30 || st.Mode().Perm() != 0o600 {
		t.Errorf("size %d mode %v", st.Size(), st.Mode())
	}
	// Sparse: lazy init keeps what is really written to a few MiB.
	if used := blocksUsed(t, st); used > 64<<20 {
		t.Errorf("1 GiB disk uses %d bytes on the host", used)
	}
	if err := MakeExt4(context.Background(), p, 1<<30, uuid, "x"); !errors.Is(err, os.ErrExist) {
		t.Errorf("overwrite: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*tmp-*"))
	if len(leftovers) != 0 {
		t.Errorf("temp files left: %v", leftovers)
	}
}

func TestMakeExt4Rejects(t *testing.T) {
	d := t.TempDir()
	if err := MakeExt4(context.Background(), filepath.Join(d, "a"), 1<<30, "not-a-uuid", "x"); err == nil {
		t.Error("bad uuid accepted")
	}
	if err := MakeExt4(context.Background(), filepath.Join(d, "b"), 1<<30, "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8", "a-label-longer-than-16"); err == nil {
		t.Error("long label accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := MakeExt4(ctx, filepath.Join(d, "c"), 1<<30, "3f1a2b4c-5d6e-4f70-8192-a3b4c5d6e7f8", "x"); err == nil {
		t.Error("cancelled context succeeded")
	}
	if entries, _ := os.ReadDir(d); len(entries) != 0 {
		t.Errorf("failed creates left files: %v", entries)
	}
}

func TestReadExt4UUIDNotExt4(t *testing.T) {
	p := filepath.Join(t.TempDir(), "zero")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadExt4UUID(p); err == nil {
		t.Error("zero file read as ext4")
	}
}

func blocksUsed(t *testing.T, st os.FileInfo) int64 {
	t.Helper()
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatal("no stat_t")
	}
	return sys.Blocks * 512
}
