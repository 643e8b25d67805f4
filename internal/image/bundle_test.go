package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func makeBundle(t *testing.T) ([]byte, Manifest) {
	t.Helper()
	rootfs, err := os.Create(filepath.Join(t.TempDir(), "rootfs.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer rootfs.Close()
	if _, err := Flatten(context.Background(), []Layer{memLayer(t, "l", []tent{tfile("etc/os-release", "ID=bundled\n")})}, rootfs, FlattenOptions{}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	m, err := WriteBundle(&b, rootfs.Name(), Manifest{Name: "team", Kernel: "debian-cloud", HasSSHD: true})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), m
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestCatalogBundles serves a catalog on loopback with a good, a corrupted
// and a truncated bundle.
func TestCatalogBundles(t *testing.T) {
	good, m := makeBundle(t)
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)/2] ^= 0xff
	files := map[string][]byte{"good.tar.zst": good, "corrupt.tar.zst": corrupt, "trunc.tar.zst": good[:len(good)/2]}
	cat := fmt.Sprintf(`{"version":1,"images":[
	  {"name":"good","url":"good.tar.zst","sha256":"%[1]s","size":%[2]d},
	  {"name":"corrupt","url":"corrupt.tar.zst","sha256":"%[1]s","size":%[2]d},
	  {"name":"trunc","url":"bundles/../trunc.tar.zst","sha256":"%[1]s","size":%[2]d}]}`, sha(good), len(good))
	var ranges atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranges.Add(1)
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "catalog.json" {
			w.Write([]byte(cat))
			return
		}
		b, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := LoadCatalog(ctx, srv.URL+"/catalog.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(name string) (string, error) {
		e, ok := c.Lookup(name)
		if !ok {
			t.Fatalf("%s not in catalog", name)
		}
		u, err := c.BundleURL(e)
		if err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(t.TempDir(), name+".tar.zst")
		return dest, Fetch(ctx, Download{URL: u, SHA256: e.SHA256, Size: e.Size, Dest: dest})
	}
	dest, err := fetch("good")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(dest)
	defer f.Close()
	var rootfs bytes.Buffer
	got, err := ReadBundle(f, &rootfs, 1<<30)
	if err != nil || got.RootfsSHA256 != m.RootfsSHA256 || got.Kernel != "debian-cloud" || !got.HasSSHD || int64(rootfs.Len()) != m.RootfsSize {
		t.Fatalf("good bundle: %+v %v", got, err)
	}
	dest, err = fetch("corrupt")
	if !errors.Is(err, ErrDigestMismatch) || strings.Count(err.Error(), "sha256:") != 2 {
		t.Errorf("corrupt bundle: %v, want a mismatch showing both digests", err)
	}
	if _, serr := os.Stat(dest + ".partial"); serr == nil {
		t.Error("a failed download left its .partial file")
	}
	if _, err := fetch("trunc"); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated bundle: %v", err)
	}

	// An interrupted download resumes with a range request.
	dest = filepath.Join(t.TempDir(), "resume.tar.zst")
	os.WriteFile(dest+".partial", good[:len(good)/3], 0o600)
	if err := Fetch(ctx, Download{URL: srv.URL + "/good.tar.zst", SHA256: sha(good), Size: int64(len(good)), Dest: dest}); err != nil {
		t.Fatal(err)
	}
	if ranges.Load() != 1 {
		t.Errorf("resume sent %d range requests", ranges.Load())
	}
	if b, _ := os.ReadFile(dest); !bytes.Equal(b, good) {
		t.Error("resumed download differs")
	}
}

func TestReadBundleRefuses(t *testing.T) {
	mk := func(names ...string) []byte {
		var b bytes.Buffer
		zw, _ := zstd.NewWriter(&b)
		tw := tar.NewWriter(zw)
		for _, n := range names {
			body := `{"version":1,"rootfs_size":4,"rootfs_sha256":"x"}`
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Size: int64(len(body)), Mode: 0o644})
			tw.Write([]byte(body))
		}
		tw.Close()
		zw.Close()
		return b.Bytes()
	}
	for _, c := range []struct {
		b    []byte
		want string
	}{
		{mk("../manifest.json"), `"../manifest.json"`},
		{mk("/rootfs.ext4"), `"/rootfs.ext4"`},
		{mk("manifest.json", "extra"), `"extra"`},
		{mk("manifest.json"), "no rootfs.ext4"},
		{mk("manifest.json", "rootfs.ext4"), "limit"},
	} {
		_, err := ReadBundle(bytes.NewReader(c.b), &bytes.Buffer{}, 3)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %s", err, c.want)
		}
	}
	if _, err := ParseCatalog([]byte(`{"images":[{"name":"x","url":"x.tar.zst"}]}`), "t"); err == nil {
		t.Error("a bundle entry without sha256 was accepted")
	}
	if _, err := LoadCatalog(context.Background(), "", nil); err != nil {
		t.Errorf("embedded catalog: %v", err)
	}
}

// TestBundleRuntime: an image's runtime config survives a bundle; a
// manifest without one does not mention it (older readers see nothing new).
func TestBundleRuntime(t *testing.T) {
	rootfs := filepath.Join(t.TempDir(), "rootfs.ext4")
	if err := os.WriteFile(rootfs, []byte("not really ext4"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := Runtime{Env: []string{"PATH=/opt/bin:/bin", "A=b c"}, WorkingDir: "/app", Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}}
	for _, want := range []Runtime{rt, {}} {
		var b bytes.Buffer
		if _, err := WriteBundle(&b, rootfs, Manifest{Name: "rt", Runtime: want}); err != nil {
			t.Fatal(err)
		}
		got, err := ReadBundle(bytes.NewReader(b.Bytes()), &bytes.Buffer{}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Runtime, want) {
			t.Errorf("runtime %+v, want %+v", got.Runtime, want)
		}
		js, _ := json.Marshal(Manifest{Name: "rt", Runtime: want})
		if strings.Contains(string(js), `"runtime"`) == want.IsZero() {
			t.Errorf("manifest JSON %s", js)
		}
	}
}
