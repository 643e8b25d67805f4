//go:build realkernel

package vmlinux

import (
	"bytes"
	"debug/elf"
	"os"
	"testing"
)

// TestRealKernel extracts a distro bzImage named by BANGER_TEST_BZIMAGE
// (for example Debian's linux-image-6.1.0-*-cloud-amd64, fetched with
// apt-get download and unpacked with dpkg -x). It is behind a build tag
// because it needs that download:
//
//	BANGER_TEST_BZIMAGE=/var/tmp/fc-test/root/boot/vmlinuz-... \
//	  go test -tags realkernel ./internal/kernel/vmlinux
func TestRealKernel(t *testing.T) {
	path := os.Getenv("BANGER_TEST_BZIMAGE")
	if path == "" {
		t.Fatal("BANGER_TEST_BZIMAGE must name a bzImage when -tags realkernel is set")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ExtractELF(f, st.Size(), &out); err != nil {
		t.Fatalf("ExtractELF: %v", err)
	}
	if !bytes.HasPrefix(out.Bytes(), []byte("\x7fELF")) {
		t.Fatalf("output does not start with ELF magic")
	}
	ef, err := elf.NewFile(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	if ef.Machine != elf.EM_X86_64 || ef.Type != elf.ET_EXEC || ef.Class != elf.ELFCLASS64 {
		t.Fatalf("got machine %v type %v class %v, want x86_64 EXEC 64-bit", ef.Machine, ef.Type, ef.Class)
	}
	t.Logf("%s: %d bytes of ELF, entry %#x, %d program headers", path, out.Len(), ef.Entry, len(ef.Progs))
}
