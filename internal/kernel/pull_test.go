package kernel

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func kernelBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	var b bytes.Buffer
	zw, _ := zstd.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))})
		tw.Write([]byte(c))
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "k.tar.zst")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInstallBundle: an ELF-only bundle gets a vmlinuz for QEMU and an
// empty module list for the initramfs; stray entries are refused by name.
func TestInstallBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "k")
	info, err := InstallBundle(kernelBundle(t, map[string]string{"vmlinux": "\x7fELF-kernel"}), dir, "6.1-fc")
	if err != nil {
		t.Fatal(err)
	}
	if info.Release != "6.1-fc" {
		t.Errorf("release %q", info.Release)
	}
	for _, f := range []string{VmlinuxFile, VmlinuzFile, ModulesFile, InfoFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if m, _ := os.ReadFile(filepath.Join(dir, ModulesFile)); !bytes.HasPrefix(m, []byte("070701")) {
		t.Error("modules.cpio is not a newc archive")
	}
	for files, want := range map[string]map[string]string{
		`"../vmlinux"`:   {"../vmlinux": "\x7fELF"},
		`"initrd"`:       {"vmlinux": "\x7fELF", "initrd": "x"},
		"not an ELF":     {"vmlinux": "MZ"},
		"no release":     {"vmlinuz": strings.Repeat("\x00", 0x202) + "HdrS...."},
		"neither vmlinu": {"kernel.json": `{"release":"x"}`},
	} {
		rel := "r"
		if files == "no release" {
			rel = ""
		}
		_, err := InstallBundle(kernelBundle(t, want), filepath.Join(t.TempDir(), "k"), rel)
		if err == nil || !strings.Contains(err.Error(), files) {
			t.Errorf("bundle %v: err %v, want %s", want, err, files)
		}
	}
}

func TestKernelCatalog(t *testing.T) {
	c, err := LoadCatalog(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := c.Lookup("debian-cloud"); !ok || e.URL != "" {
		t.Errorf("built-in catalog: %+v", c)
	}
	p := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(p, []byte(`{"kernels":[{"name":"fc","url":"fc.tar.zst"}]}`), 0o644)
	if _, err := LoadCatalog(context.Background(), p, nil); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("unpinned bundle accepted: %v", err)
	}
}
