package artifacts

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
)

// kernelTar is a kernel.import_files body: entries name → content.
func kernelTar(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		must(t, tw.WriteHeader(&tar.Header{Name: e[0], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e[1]))}))
		tw.Write([]byte(e[1]))
	}
	must(t, tw.Close())
	return b.Bytes()
}

func emptyCpio(t *testing.T) string {
	var b bytes.Buffer
	must(t, cpio.NewWriter(&b).Close())
	return b.String()
}

// Loose kernel files arrive as the body's tar; the names the client gives
// are recorded, never opened.
func TestKernelImportFilesFromUpload(t *testing.T) {
	s, paths := newTestService(t)
	vmlinux := "\x7fELF-kernel"
	body := kernelTar(t, [2]string{api.KernelFilesEntryKernel, vmlinux}, [2]string{api.KernelFilesEntryModules, emptyCpio(t)})
	var ev events
	info, err := s.KernelImportFiles(context.Background(), api.ImportKernelFilesParams{Name: "mine", Kernel: "/client/vmlinux",
		Modules: "/client/modules.cpio", Release: "6.1-mine"}, bytes.NewReader(body), &ev)
	must(t, err)
	if info.Release != "6.1-mine" || info.Source != "files /client/vmlinux" || !within(paths.KernelDir(), info.Dir) ||
		strings.Join(info.Files, ",") != "kernel.json,modules.cpio,vmlinux,vmlinuz" {
		t.Errorf("imported %+v", info)
	}
	if b, err := os.ReadFile(filepath.Join(info.Dir, "vmlinux")); err != nil || string(b) != vmlinux {
		t.Errorf("vmlinux = %q (%v)", b, err)
	}
	if ev.stage(api.StageUpload) == 0 {
		t.Errorf("no upload progress: %+v", ev.all)
	}
	assertNoUploads(t, paths)
}

func TestKernelImportFilesBadUploads(t *testing.T) {
	s, paths := newTestService(t)
	good := kernelTar(t, [2]string{api.KernelFilesEntryKernel, "\x7fELF-kernel" + strings.Repeat("k", 8000)})
	for _, c := range []struct {
		what string
		p    api.ImportKernelFilesParams
		body []byte
		want string
	}{
		{"truncated", api.ImportKernelFilesParams{Release: "6.1"}, good[:4096], "nothing was imported"},
		{"no kernel entry", api.ImportKernelFilesParams{Release: "6.1"}, kernelTar(t), "no kernel file was sent"},
		{"modules announced, not sent", api.ImportKernelFilesParams{Release: "6.1", Modules: "/m.cpio"}, good, "--modules /m.cpio was not sent"},
		{"stray entry", api.ImportKernelFilesParams{Release: "6.1"}, kernelTar(t, [2]string{"../../etc/passwd", "x"}), `unexpected entry "../../etc/passwd"`},
		{"not a kernel", api.ImportKernelFilesParams{Release: "6.1"}, kernelTar(t, [2]string{api.KernelFilesEntryKernel, "text"}), "neither a bzImage nor an ELF"},
		{"no release", api.ImportKernelFilesParams{}, good, "--release"},
	} {
		c.p.Name = "k"
		_, err := s.KernelImportFiles(context.Background(), c.p, bytes.NewReader(c.body), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.what, err, c.want)
		}
		if _, err := s.KernelShow(context.Background(), "k"); err == nil {
			t.Fatalf("%s: a kernel was registered", c.what)
		}
		if ents, _ := os.ReadDir(paths.KernelDir()); len(ents) != 1 { // the stand-in only
			t.Errorf("%s: kernel dir holds %d entries", c.what, len(ents))
		}
		assertNoUploads(t, paths)
	}
}

// assertNoUploads checks that no received file is left in the cache.
func assertNoUploads(t *testing.T, paths config.Paths) {
	t.Helper()
	if ents, _ := os.ReadDir(filepath.Join(paths.CacheDir, "downloads")); len(ents) != 0 {
		t.Errorf("uploads left in the cache: %v", ents[0].Name())
	}
}
