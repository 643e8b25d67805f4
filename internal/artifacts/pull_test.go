package artifacts

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts/artifactstest"
	"github.com/banger-dev/banger/internal/config"
	"github.com/klauspost/compress/zstd"
)

// Moved from the daemon with the code: pulls through the service.

func imageFiles(paths config.Paths) []string {
	ents, _ := os.ReadDir(paths.ImageDir())
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func isCode(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

// TestImagePullRaces: pulls of different names run in parallel; pulls
// racing for one name end with exactly one image; a failed pull leaves
// nothing.
func TestImagePullRaces(t *testing.T) {
	s, paths := newTestService(t)
	reg, push := artifactstest.OCIRegistry(t)
	for _, r := range []string{"a", "b", "c", "d"} {
		push(r+":1", map[string]string{"etc/" + r: r, "usr/sbin/sshd": "x", "sbin/init@sym": "/lib/systemd/systemd", "lib/systemd/systemd": "s"})
	}
	push("evil:1", map[string]string{"x@sym": "/etc", "x/passwd": "p"})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, r := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := "same"
			if i >= 2 {
				n = "own-" + r
			}
			_, errs[i] = s.Pull(context.Background(), api.PullImageParams{Ref: reg + "/" + r + ":1", Name: n}, nil)
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || errs[2] != nil || errs[3] != nil {
		t.Fatalf("pull results %v: want one winner for \"same\" and both own-* pulls", errs)
	}
	for _, e := range errs[:2] {
		if e != nil && !isCode(e, api.CodeConflict) {
			t.Errorf("losing pull: %v", e)
		}
	}
	info, err := s.Show(context.Background(), "own-c")
	must(t, err)
	if info.Init != "/sbin/init" || !info.HasSSHD {
		t.Errorf("own-c: init %q sshd %v", info.Init, info.HasSSHD)
	}
	if files := imageFiles(paths); len(files) != 3 {
		t.Errorf("image files %v, want 3", files)
	}
	_, err = s.Pull(context.Background(), api.PullImageParams{Ref: reg + "/evil:1"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"x/passwd"`) {
		t.Errorf("malicious image: %v", err)
	}
	if _, err := s.Show(context.Background(), "evil"); !isCode(err, api.CodeNotFound) {
		t.Errorf("failed pull registered something: %v", err)
	}
	if files := imageFiles(paths); len(files) != 3 {
		t.Errorf("failed pull left files: %v", files)
	}
	if blobs, _ := os.ReadDir(filepath.Join(paths.CacheDir, "blobs")); len(blobs) != 0 {
		t.Errorf("a pull that cannot succeed kept %d blobs", len(blobs))
	}
}

// TestKernelPullFromCatalog: a sha256-pinned kernel bundle from a catalog
// on loopback; a corrupted one is refused with both digests.
func TestKernelPullFromCatalog(t *testing.T) {
	var b bytes.Buffer
	zw, _ := zstd.NewWriter(&b)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "vmlinux", Typeflag: tar.TypeReg, Mode: 0o644, Size: 9})
	tw.Write([]byte("\x7fELF-test"))
	tw.Close()
	zw.Close()
	good := b.Bytes()
	sum := sha256.Sum256(good)
	pub := t.TempDir()
	os.WriteFile(filepath.Join(pub, "fc.tar.zst"), good, 0o644)
	os.WriteFile(filepath.Join(pub, "bad.tar.zst"), append([]byte{0}, good[1:]...), 0o644)
	cat := fmt.Sprintf(`{"version":1,"kernels":[{"name":"fc","url":"fc.tar.zst","sha256":"%[1]x","release":"6.1-fc"},
		{"name":"bad","url":"bad.tar.zst","sha256":"%[1]x","release":"6.1-fc"}]}`, sum)
	os.WriteFile(filepath.Join(pub, "kernels.json"), []byte(cat), 0o644)
	srv := httptest.NewServer(http.FileServer(http.Dir(pub)))
	defer srv.Close()
	s, _ := newTestService(t, func(c *config.Config) { c.KernelCatalog = srv.URL + "/kernels.json" })
	var ev events
	info, err := s.KernelPull(context.Background(), api.PullKernelParams{Ref: "fc"}, &ev)
	must(t, err)
	events := ev.all
	// The download's progress carries its counts; the closing line none.
	var counted, closed bool
	for _, p := range events {
		if p.Stage != api.StageDownload {
			continue
		}
		if p.Unit == api.UnitBytes {
			counted = counted || (p.Total == int64(len(good)) && p.Done >= 0 && p.Done <= p.Total)
		} else {
			closed = closed || (p.Done == 0 && p.Total == 0 && strings.Contains(p.Message, " in "))
		}
	}
	if !counted || !closed {
		t.Errorf("download progress without done of total = %d bytes, or without its closing line: %+v", len(good), events)
	}
	if info.Release != "6.1-fc" || strings.Join(info.Files, ",") != "kernel.json,modules.cpio,vmlinux,vmlinuz" {
		t.Errorf("pulled kernel: %+v", info)
	}
	_, err = s.KernelPull(context.Background(), api.PullKernelParams{Ref: "bad"}, nil)
	if err == nil || strings.Count(err.Error(), "sha256:") != 2 {
		t.Errorf("corrupted kernel bundle: %v", err)
	}
	must(t, s.KernelDelete(context.Background(), "fc"))
	if _, err := os.Stat(info.Dir); !os.IsNotExist(err) {
		t.Errorf("kernel dir left: %v", err)
	}
	cl, err := s.KernelCatalog(context.Background())
	must(t, err)
	if len(cl.Entries) != 2 {
		t.Errorf("kernel catalog: %+v", cl)
	}
}
