package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Regression tests for issue 11 findings 5 and 11: layers a registry
// sends are hostile input too.

func flattenErr(t *testing.T, layers ...[]tent) error {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "img.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var ls []Layer
	for i, ents := range layers {
		ls = append(ls, memLayer(t, "layer"+string(rune('0'+i)), ents))
	}
	_, err = Flatten(context.Background(), ls, out, FlattenOptions{})
	return err
}

// The proof of concept: one entry "a/"×32768+"f" (68 KB of PAX name)
// took 2 min 46 s and 4.5 GiB to flatten.
func TestFlattenDeepPath(t *testing.T) {
	cases := []struct{ name, want string }{
		{strings.Repeat("a/", 32768) + "f", "longer than PATH_MAX"},
		{strings.Repeat("a/", 1100) + "f", "path components"},
		{"ok/" + strings.Repeat("b", 4100), "longer than PATH_MAX"},
	}
	for _, c := range cases {
		err := bounded(t, hostileTime, hostileAlloc, func() error { return flattenErr(t, []tent{tfile(c.name, "x")}) })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d-byte name: %v, want %q", len(c.name), err, c.want)
		}
	}
	long := tsym("l", strings.Repeat("t/", 2100))
	if err := flattenErr(t, []tent{long}); err == nil || !strings.Contains(err.Error(), "symlink target") {
		t.Errorf("long symlink target: %v", err)
	}
	hard := tlink("h", strings.Repeat("a/", 1100)+"f")
	if err := flattenErr(t, []tent{tfile("f", "x"), hard}); err == nil || !strings.Contains(err.Error(), "path components") {
		t.Errorf("deep hard link target: %v", err)
	}
	// At the limits, an image still flattens.
	okName := strings.Repeat("a/", 1000) + "f"
	if _, _, err := flattenT(t, []Layer{memLayer(t, "l", []tent{tfile(okName, "x")})}, FlattenOptions{}); err != nil {
		t.Errorf("1001 components: %v", err)
	}
}

// Whiteout names are files, never directories: `.wh..wh..opq/a` used to
// leave a literal ".wh..wh..opq" directory that promote then read as an
// opaque marker of the image's root.
func TestFlattenWhiteoutAsDirectory(t *testing.T) {
	for _, name := range []string{".wh..wh..opq/a", "etc/.wh.passwd/x", "etc/.wh.passwd"} {
		err := flattenErr(t, []tent{tdir("etc/"), tfile("etc/passwd", "p")}, []tent{{name: name, typ: tar.TypeReg, mode: 0o644}})
		if name != "etc/.wh.passwd" {
			if err == nil || !strings.Contains(err.Error(), "whiteout name") {
				t.Errorf("%s: %v, want refused", name, err)
			}
			continue
		}
		if err != nil { // a plain whiteout still works
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A guest file named like a whiteout cannot be told from one once the
// overlay is a tar stream: promote refuses it instead of deleting /d.
func TestPromoteRefusesWhiteoutNamedFile(t *testing.T) {
	img := mkfsT(t, "4M", func(dir string) {
		upperTree(dir)
		os.WriteFile(filepath.Join(dir, "upper/.wh.etc"), nil, 0o644)
	})
	if err := promoteT(t, img); err == nil || !strings.Contains(err.Error(), "named like an OCI whiteout") {
		t.Fatalf("promote: %v", err)
	}
}

// fakeManifestImage is an image that only has a manifest: checkManifest
// must refuse before anything else is fetched.
type fakeManifestImage struct {
	v1.Image
	m *v1.Manifest
}

func (f fakeManifestImage) Manifest() (*v1.Manifest, error) { return f.m, nil }

func TestCheckManifestLimits(t *testing.T) {
	layers := func(n int, size int64) []v1.Descriptor {
		out := make([]v1.Descriptor, n)
		for i := range out {
			out[i] = v1.Descriptor{MediaType: types.OCILayer, Size: size}
		}
		return out
	}
	cases := []struct {
		m    v1.Manifest
		want string
	}{
		{v1.Manifest{Layers: layers(129, 10)}, "129 layers"},
		{v1.Manifest{Config: v1.Descriptor{Size: 1 << 30}, Layers: layers(1, 10)}, "config is declared"},
		{v1.Manifest{Layers: layers(1, maxImageSize+1)}, "layer 1 is declared"},
		{v1.Manifest{Layers: layers(3, maxImageSize/2)}, "in all"},
		{v1.Manifest{Layers: layers(1, -5)}, "declared as -5"},
		{v1.Manifest{Config: v1.Descriptor{Size: 4096}, Layers: layers(128, 1<<20)}, ""},
	}
	for _, c := range cases {
		err := checkManifest(fakeManifestImage{m: &c.m})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%d layers: %v, want %q", len(c.m.Layers), err, c.want)
		}
	}
}

// Through a registry: PullOCI checks the manifest before the config or
// any layer is downloaded.
func TestPullOCITooManyLayers(t *testing.T) {
	reg := testRegistry(t)
	img := empty.Image
	var err error
	for i := 0; i < maxLayers+1; i++ {
		l := static.NewLayer([]byte{byte(i)}, types.OCILayer)
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	pushRaw(t, reg+"/many:1", img)
	tr := &countingTransport{}
	if _, _, _, err := pullT(t, reg+"/many:1", t.TempDir(), tr); err == nil || !strings.Contains(err.Error(), "129 layers") {
		t.Fatalf("pull: %v", err)
	}
	if n := tr.blobs.Load(); n != 0 {
		t.Errorf("%d blobs fetched before refusing", n)
	}
}

func pushRaw(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
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

// The ext4 converter runs in a goroutine of its own, on names and xattrs
// a guest or a registry chose: a panic there is an error for this call
// too, never a dead daemon.
func TestFlattenConverterPanicIsAnError(t *testing.T) {
	orig := convertTar
	t.Cleanup(func() { convertTar = orig })
	convertTar = func(r io.Reader, out *os.File) error { panic("converter bug") }
	out, err := os.Create(filepath.Join(t.TempDir(), "out.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	_, err = Flatten(context.Background(), []Layer{memLayer(t, "l", []tent{tdir("etc/"), tfile("etc/a", "a")})}, out, FlattenOptions{})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "converter bug" {
		t.Fatalf("err = %v, want the converter's panic as a PanicError", err)
	}
}
