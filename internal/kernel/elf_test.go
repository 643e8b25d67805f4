package kernel

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// fakeBzImage wraps payload (gzip-compressed) in a minimal bzImage setup
// header, as the boot protocol lays it out.
func fakeBzImage(t *testing.T, payload []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(payload)
	zw.Close()
	const setupSects = 1
	img := make([]byte, (setupSects+1)*512)
	img[0x1f1] = setupSects
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x020f)
	binary.LittleEndian.PutUint32(img[0x248:], 0)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(z.Len()+4)) // payload_length includes the size trailer
	img = append(img, z.Bytes()...)
	size := make([]byte, 4)
	binary.LittleEndian.PutUint32(size, uint32(len(payload)))
	return append(img, size...)
}

func TestEnsureELFExtractsOnceAndKeepsExisting(t *testing.T) {
	dir := t.TempDir()
	elf := append([]byte("\x7fELF\x02\x01\x01"), bytes.Repeat([]byte{0}, 200)...)
	if err := os.WriteFile(filepath.Join(dir, VmlinuzFile), fakeBzImage(t, elf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := EnsureELF(dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, VmlinuxFile))
	if err != nil || !bytes.Equal(got, elf) {
		t.Fatalf("vmlinux = %q, %v", got[:min(len(got), 8)], err)
	}
	// An existing vmlinux is kept (the import is immutable once made).
	os.WriteFile(filepath.Join(dir, VmlinuxFile), []byte("kept"), 0o644)
	if err := EnsureELF(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, VmlinuxFile)); string(b) != "kept" {
		t.Errorf("vmlinux rewritten: %q", b)
	}
}

func TestEnsureELFRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, VmlinuzFile), []byte("not a kernel"), 0o644)
	if err := EnsureELF(dir); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, VmlinuxFile)); err == nil {
		t.Error("partial vmlinux left behind")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}
