// Package artifactstest holds test helpers for images: an OCI registry
// on loopback to pull from, and the one-layer images it serves.
package artifactstest

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// OCIRegistry is go-containerregistry's registry on 127.0.0.1; push puts a
// one-layer linux/amd64 image made of files (name → content; a name
// ending in "@sym" is a symlink to its content), with the config's Env,
// WorkingDir, Entrypoint and Cmd from cfg when given.
func OCIRegistry(t *testing.T) (host string, push func(repo string, files map[string]string, cfg ...v1.Config)) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	return host, func(repo string, files map[string]string, cfg ...v1.Config) {
		img := Image(t, files, cfg...)
		ref, err := name.ParseReference(host + "/" + repo)
		must(t, err)
		must(t, remote.Write(ref, img))
	}
}

// Image is a one-layer linux/amd64 image made of files (name → content;
// a name ending in "@sym" is a symlink to its content; files are 0755),
// with the config's Env, WorkingDir, Entrypoint, Cmd and User from cfg
// when given.
func Image(t testing.TB, files map[string]string, cfg ...v1.Config) v1.Image {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	// Entries go in path order (a symlink before what is written
	// through it): map order would make the layer differ per run.
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return strings.TrimSuffix(names[i], "@sym") < strings.TrimSuffix(names[j], "@sym")
	})
	for _, n := range names {
		c := files[n]
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(c))}
		if target, ok := strings.CutSuffix(n, "@sym"); ok {
			h = &tar.Header{Name: target, Typeflag: tar.TypeSymlink, Linkname: c, Mode: 0o777}
		}
		must(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(c))
		}
	}
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	must(t, err)
	img, err := mutate.AppendLayers(empty.Image, l)
	must(t, err)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	for _, c := range cfg {
		cf.Config.Env, cf.Config.WorkingDir, cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User = c.Env, c.WorkingDir, c.Entrypoint, c.Cmd, c.User
	}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	return img
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
