package image

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testRegistry is go-containerregistry's in-process registry on loopback.
func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushImage builds an image from tar layers (lowest first) and pushes it.
func pushImage(t *testing.T, ref string, arch string, layers ...[]tent) {
	t.Helper()
	pushImageConfig(t, ref, arch, v1.Config{}, layers...)
}

// pushImageConfig is pushImage with a runtime config.
func pushImageConfig(t *testing.T, ref string, arch string, config v1.Config, layers ...[]tent) {
	t.Helper()
	img := empty.Image
	for _, ents := range layers {
		b := tarBytes(t, ents)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", arch, config
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// countingTransport counts blob downloads and can corrupt them.
type countingTransport struct {
	blobs   atomic.Int32
	corrupt bool
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.Path, "/blobs/") || req.Method != http.MethodGet {
		return resp, err
	}
	c.blobs.Add(1)
	if c.corrupt {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) > 0 {
			b[len(b)/2] ^= 0xff
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}

func pullT(t *testing.T, ref, blobs string, tr http.RoundTripper) (*Ext4, OCIResult, []string, error) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "img.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	var phases []string
	res, digests, err := PullOCI(context.Background(), OCIOptions{Ref: ref, BlobDir: blobs, Transport: tr,
		Progress: progress.Func(func(p api.Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Stage {
				phases = append(phases, p.Stage)
			}
		})}, out)
	if err != nil {
		return nil, res, digests, err
	}
	fsck(t, out.Name())
	fs, err := OpenExt4(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(phases, ",") != "download,flatten" {
		t.Errorf("progress phases %v", phases)
	}
	return fs, res, digests, nil
}

func TestPullOCIMultiLayer(t *testing.T) {
	reg := testRegistry(t)
	ref := reg + "/test/multi:v1"
	pushImage(t, ref, "amd64",
		[]tent{tdir("etc/"), tfile("etc/os-release", "ID=test\n"), tfile("etc/gone", "x"), tdir("app/"), tfile("app/old", "o"),
			{name: "bin/sh", typ: '0', body: "#!", mode: 0o755}, {name: "usr/bin/sudo", typ: '0', body: "s", mode: 0o4711}},
		[]tent{tfile("etc/.wh.gone", ""), tdir("app/"), tfile("app/.wh..wh..opq", ""), tfile("app/new", "n"),
			tlink("app/new2", "app/new"), tsym("etc/link", "os-release")},
	)
	blobs := t.TempDir()
	fs, res, digests, err := pullT(t, ref, blobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	ReleaseBlobs(blobs, digests, true)
	if got := content(t, fs, "/etc/os-release"); got != "ID=test\n" {
		t.Errorf("os-release %q", got)
	}
	absent(t, fs, "/etc/gone")
	absent(t, fs, "/app/old")
	if a, b := statT(t, fs, "/app/new"), statT(t, fs, "/app/new2"); a.Num != b.Num {
		t.Error("hard link lost")
	}
	if in := statT(t, fs, "/usr/bin/sudo"); in.Mode&0o7777 != 0o4711 {
		t.Errorf("setuid mode %o", in.Mode&0o7777)
	}
	if res.Layers != 2 || !strings.HasPrefix(res.Digest, "sha256:") || !strings.Contains(res.Canonical, "@sha256:") || res.Init != "" || res.HasSSHD {
		t.Errorf("result %+v", res)
	}
	if ents, _ := os.ReadDir(blobs); len(ents) != 0 {
		t.Errorf("blobs left after a successful pull: %d", len(ents))
	}
}

func TestPullOCIRefusals(t *testing.T) {
	reg := testRegistry(t)
	pushImage(t, reg+"/evil:1", "amd64", []tent{tfile("ok", "x")}, []tent{tsym("x", "../../../etc"), tfile("x/passwd", "p")})
	pushImage(t, reg+"/arm:1", "arm64", []tent{tfile("ok", "x")})
	blobs := t.TempDir()
	tr := &countingTransport{}
	_, _, digests, err := pullT(t, reg+"/evil:1", blobs, tr)
	if err == nil || !strings.Contains(err.Error(), `"x/passwd"`) {
		t.Fatalf("malicious layer: %v", err)
	}
	ReleaseBlobs(blobs, digests, false)
	if n := tr.blobs.Load(); n != 3 { // the config and two layers
		t.Errorf("first pull fetched %d blobs", n)
	}
	// The re-run resumes: both layers are already in the blob cache.
	if _, _, digests, err = pullT(t, reg+"/evil:1", blobs, tr); err == nil {
		t.Fatal("second pull of the malicious image succeeded")
	}
	ReleaseBlobs(blobs, digests, false)
	if n := tr.blobs.Load(); n != 4 { // only the config again
		t.Errorf("re-run downloaded layers again (%d blob fetches in all)", n)
	}
	if _, _, _, err := pullT(t, reg+"/arm:1", t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("arm64 image: %v", err)
	}
	_, _, _, err = pullT(t, reg+"/arm:1", t.TempDir(), &countingTransport{corrupt: true})
	if err == nil || strings.Count(err.Error(), "sha256:") < 2 {
		t.Errorf("corrupted download: %v, want both digests", err)
	}
}

// A multi-platform index resolves to linux/amd64.
func TestPullOCIIndex(t *testing.T) {
	reg := testRegistry(t)
	pushImage(t, reg+"/p:amd", "amd64", []tent{tfile("arch", "amd64")})
	pushImage(t, reg+"/p:arm", "arm64", []tent{tfile("arch", "arm64")})
	idx := mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json")
	for _, tag := range []string{"arm", "amd"} {
		r, _ := name.ParseReference(reg + "/p:" + tag)
		img, err := remote.Image(r)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: cf.Architecture}}})
	}
	r, _ := name.ParseReference(reg + "/p:multi")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	fs, _, _, err := pullT(t, reg+"/p:multi", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := content(t, fs, "/arch"); got != "amd64" {
		t.Errorf("pulled the %s image", got)
	}
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// TestPullOCIRuntime: the config's Env, WorkingDir, Entrypoint and Cmd
// come back with the pull; env entries no process could be given and a
// relative working directory do not; an image without them has none.
func TestPullOCIRuntime(t *testing.T) {
	reg := testRegistry(t)
	for _, tt := range []struct {
		name string
		cfg  v1.Config
		want Runtime
	}{
		{"golang-like", v1.Config{Env: []string{"PATH=/usr/local/go/bin:/usr/bin:/bin", "GOLANG_VERSION=1.22.5", "EMPTY="},
			WorkingDir: "/go/src/", Entrypoint: []string{"/entry.sh", "--"}, Cmd: []string{"go", "version"}, User: "gopher:staff"},
			Runtime{Env: []string{"PATH=/usr/local/go/bin:/usr/bin:/bin", "GOLANG_VERSION=1.22.5", "EMPTY="},
				WorkingDir: "/go/src", Entrypoint: []string{"/entry.sh", "--"}, Cmd: []string{"go", "version"}, User: "gopher:staff"}},
		{"nothing", v1.Config{}, Runtime{}},
		{"odd", v1.Config{Env: []string{"NOEQUALS", "=v", "A=1", "B=x\x00y"}, WorkingDir: "rel/dir", Cmd: []string{"sh"}},
			Runtime{Env: []string{"A=1"}, Cmd: []string{"sh"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ref := reg + "/test/rt-" + tt.name + ":v1"
			pushImageConfig(t, ref, "amd64", tt.cfg, []tent{tfile("etc/os-release", "ID=rt\n")})
			blobs := t.TempDir()
			_, res, digests, err := pullT(t, ref, blobs, nil)
			if err != nil {
				t.Fatal(err)
			}
			ReleaseBlobs(blobs, digests, true)
			if !reflect.DeepEqual(res.Runtime, tt.want) {
				t.Errorf("runtime %+v, want %+v", res.Runtime, tt.want)
			}
			if res.Runtime.IsZero() != (tt.name == "nothing") {
				t.Errorf("IsZero = %v", res.Runtime.IsZero())
			}
		})
	}
}
