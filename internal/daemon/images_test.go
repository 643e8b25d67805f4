package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts"
)

// ociRegistry is go-containerregistry's registry on 127.0.0.1; push puts a
// one-layer linux/amd64 image made of files (name → content; a name
// ending in "@sym" is a symlink to its content), with the config's Env,
// WorkingDir, Entrypoint and Cmd from cfg when given.
func ociRegistry(t *testing.T) (host string, push func(repo string, files map[string]string, cfg ...v1.Config)) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	return host, func(repo string, files map[string]string, cfg ...v1.Config) {
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
		ref, err := name.ParseReference(host + "/" + repo)
		must(t, err)
		must(t, remote.Write(ref, img))
	}
}

func (h *harness) imageFiles() []string {
	ents, _ := os.ReadDir(h.paths.ImageDir())
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestImagePullUseDelete: vm create --image REF pulls on first use; an
// image without init or sshd boots with the agent as PID 1 and refuses
// vm ssh with an explanation; delete is refused while a VM uses it.
func TestImagePullUseDelete(t *testing.T) {
	h := newHarness(t)
	reg, push := ociRegistry(t)
	push("tools/mini:v1", map[string]string{"etc/os-release": "ID=mini\n", "bin/sh": "#!"})
	ref := reg + "/tools/mini:v1"
	var vm api.VM
	must(t, h.call(api.MethodVMCreate, api.CreateParams{Name: "m1", Image: ref, WaitSSH: true}, &vm))
	if vm.Image != "mini-v1" {
		t.Fatalf("vm image %q, want the derived name mini-v1", vm.Image)
	}
	var info api.ImageInfo
	must(t, h.call(api.MethodImageShow, api.NameParams{Name: "mini-v1"}, &info))
	if info.Init != "none" || info.HasSSHD || !strings.Contains(info.Ref, "@sha256:") || len(info.UsedBy) != 1 {
		t.Errorf("image show: %+v", info)
	}
	f, err := os.Open(filepath.Join(h.paths.VMDir(vm.ID), "config.img"))
	must(t, err)
	cfg, err := proto.DecodeConfigDrive(f)
	f.Close()
	if err != nil || cfg.Init != artifacts.NoInitPath {
		t.Errorf("guest config init %q (%v), want %q", cfg.Init, err, artifacts.NoInitPath)
	}
	// The same reference again uses the pulled image, no second pull.
	must(t, h.call(api.MethodVMCreate, api.CreateParams{Name: "m2", Image: ref}, &vm))
	if vm.Image != "mini-v1" {
		t.Errorf("second create used %q", vm.Image)
	}
	err = h.call(api.MethodVMSSH, api.NameParams{Name: "m1"}, nil)
	if !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "no sshd") {
		t.Errorf("vm ssh on an image without sshd: %v", err)
	}
	err = h.call(api.MethodImageDelete, api.NameParams{Name: "mini-v1"}, nil)
	if !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "m1, m2") {
		t.Errorf("delete of a used image: %v", err)
	}
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "m1"}, nil))
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "m2"}, nil))
	must(t, h.call(api.MethodImageDelete, api.NameParams{Name: "mini-v1"}, nil))
	if files := h.imageFiles(); len(files) != 0 {
		t.Errorf("image files left: %v", files)
	}
	// A bare unknown word is not pulled from Docker Hub behind the user's back.
	err = h.call(api.MethodVMCreate, api.CreateParams{Name: "m3", Image: "no-such-image"}, nil)
	if !isCode(err, api.CodeNotFound) {
		t.Errorf("unknown bare image: %v", err)
	}
}

// TestImagePullRaces: pulls of different names run in parallel; pulls
// racing for one name end with exactly one image; a failed pull leaves
// nothing.
func TestImagePullRaces(t *testing.T) {
	h := newHarness(t)
	reg, push := ociRegistry(t)
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
			errs[i] = h.call(api.MethodImagePull, api.PullImageParams{Ref: reg + "/" + r + ":1", Name: n}, nil)
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
	var info api.ImageInfo
	must(t, h.call(api.MethodImageShow, api.NameParams{Name: "own-c"}, &info))
	if info.Init != "/sbin/init" || !info.HasSSHD {
		t.Errorf("own-c: init %q sshd %v", info.Init, info.HasSSHD)
	}
	if files := h.imageFiles(); len(files) != 3 {
		t.Errorf("image files %v, want 3", files)
	}
	err := h.call(api.MethodImagePull, api.PullImageParams{Ref: reg + "/evil:1"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"x/passwd"`) {
		t.Errorf("malicious image: %v", err)
	}
	if err := h.call(api.MethodImageShow, api.NameParams{Name: "evil"}, nil); !isCode(err, api.CodeNotFound) {
		t.Errorf("failed pull registered something: %v", err)
	}
	if files := h.imageFiles(); len(files) != 3 {
		t.Errorf("failed pull left files: %v", files)
	}
	if blobs, _ := os.ReadDir(filepath.Join(h.paths.CacheDir, "blobs")); len(blobs) != 0 {
		t.Errorf("a pull that cannot succeed kept %d blobs", len(blobs))
	}
}

// TestImageExportCatalogPromote: export a bundle into a directory served
// on loopback as a catalog, pull it back under another name, then promote
// a stopped VM of it with a change written into its overlay.
func TestImageExportCatalogPromote(t *testing.T) {
	h := newHarness(t)
	reg, push := ociRegistry(t)
	rt := api.ImageRuntime{Env: []string{"PATH=/opt/base/bin:/usr/bin:/bin"}, WorkingDir: "/srv", Cmd: []string{"serve", "--port", "80"}}
	push("base:1", map[string]string{"etc/os-release": "ID=base\n"}, v1.Config{Env: rt.Env, WorkingDir: rt.WorkingDir, Cmd: rt.Cmd})
	must(t, h.call(api.MethodImagePull, api.PullImageParams{Ref: reg + "/base:1", Name: "base"}, nil))
	pub := t.TempDir()
	// The bundle streams back to the client, which writes both files.
	bundle, err := os.Create(filepath.Join(pub, "base.tar.zst"))
	must(t, err)
	res, err := h.client.ImageExport(context.Background(), api.ExportImageParams{Name: "base"}, nil, bundle, nil)
	must(t, err)
	must(t, bundle.Close())
	if res.Entry.URL != "base.tar.zst" || len(res.Entry.SHA256) != 64 || res.Bundle != "" || !strings.Contains(res.CatalogFile, `"base.tar.zst"`) {
		t.Fatalf("export: %+v", res)
	}
	must(t, os.WriteFile(filepath.Join(pub, "catalog.json"), []byte(res.CatalogFile), 0o644))
	srv := httptest.NewServer(http.FileServer(http.Dir(pub)))
	defer srv.Close()
	h.stop()
	h.cfg.ImageCatalog = srv.URL + "/catalog.json"
	h.start()
	var cat api.CatalogList
	must(t, h.call(api.MethodImageCatalog, nil, &cat))
	if len(cat.Entries) != 1 || cat.Entries[0].Name != "base" || !cat.Entries[0].Installed {
		t.Errorf("catalog: %+v", cat)
	}
	var info api.ImageInfo
	must(t, h.call(api.MethodImagePull, api.PullImageParams{Ref: "base", Name: "copy"}, &info))
	if !strings.HasPrefix(info.Source, "bundle "+srv.URL) || info.Kernel != "debian-cloud" || info.Init != "none" || !reflect.DeepEqual(info.Runtime, rt) {
		t.Errorf("pulled bundle: %+v", info)
	}

	vm := h.createWith(api.CreateParams{Name: "p1", Image: "copy"})
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "p1"}, nil))
	overlay := filepath.Join(h.paths.VMDir(vm.ID), "overlay.ext4")
	src := filepath.Join(t.TempDir(), "motd")
	os.WriteFile(src, []byte("promoted\n"), 0o644)
	for _, c := range []string{"mkdir upper", "mkdir upper/etc", "write " + src + " upper/etc/motd"} {
		if out, err := exec.Command("debugfs", "-w", "-R", c, overlay).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v\n%s", c, err, out)
		}
	}
	must(t, h.call(api.MethodImagePromote, api.PromoteImageParams{VM: "p1", Name: "promoted"}, &info))
	if !strings.Contains(info.Source, "promote of vm p1") || info.Kernel != "debian-cloud" || !reflect.DeepEqual(info.Runtime, rt) {
		t.Errorf("promoted: %+v", info)
	}
	for p, want := range map[string]string{"/etc/motd": "promoted\n", "/etc/os-release": "ID=base\n"} {
		out, err := exec.Command("debugfs", "-R", "cat "+p, info.Path).Output()
		if err != nil || string(out) != want {
			t.Errorf("promoted image %s = %q (%v), want %q", p, out, err, want)
		}
	}
	err = h.call(api.MethodImagePromote, api.PromoteImageParams{VM: "p1", Name: "promoted"}, nil)
	if !isCode(err, api.CodeConflict) {
		t.Errorf("promote onto a taken name: %v", err)
	}
}

func (h *harness) createWith(p api.CreateParams) api.VM {
	h.t.Helper()
	var vm api.VM
	must(h.t, h.call(api.MethodVMCreate, p, &vm))
	return vm
}

// TestKernelPullFromCatalog: a sha256-pinned kernel bundle from a catalog
// on loopback; a corrupted one is refused with both digests.
func TestKernelPullFromCatalog(t *testing.T) {
	h := newHarness(t)
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
	h.stop()
	h.cfg.KernelCatalog = srv.URL + "/kernels.json"
	h.start()
	var info api.KernelInfo
	var events []api.Progress
	must(t, h.client.Call(context.Background(), api.MethodKernelPull, api.PullKernelParams{Ref: "fc"}, &info,
		func(p api.Progress) { events = append(events, p) }))
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
	err := h.call(api.MethodKernelPull, api.PullKernelParams{Ref: "bad"}, nil)
	if err == nil || strings.Count(err.Error(), "sha256:") != 2 {
		t.Errorf("corrupted kernel bundle: %v", err)
	}
	must(t, h.call(api.MethodKernelDelete, api.NameParams{Name: "fc"}, nil))
	if _, err := os.Stat(info.Dir); !os.IsNotExist(err) {
		t.Errorf("kernel dir left: %v", err)
	}
	var cl api.CatalogList
	must(t, h.call(api.MethodKernelCatalog, nil, &cl))
	if len(cl.Entries) != 2 {
		t.Errorf("kernel catalog: %+v", cl)
	}
}

// A failed kernel import says "import kernel" once, whichever layer the
// failure comes from (it used to read "import kernel: import kernel: …").
// The .deb is the call's body: the name the client gives is not on the
// daemon's side, yet the error names it rather than the daemon's copy.
func TestKernelImportErrorNotDoubled(t *testing.T) {
	h := newHarness(t)
	bad := "/client/side/only/bad.deb"
	_, err := h.client.KernelImport(context.Background(), api.ImportKernelParams{Name: "bad", DebFile: bad, Size: 7},
		strings.NewReader("garbage"), nil)
	if err == nil || !strings.Contains(err.Error(), "import kernel: dpkg -x "+bad) || strings.Count(err.Error(), "import kernel") != 1 {
		t.Fatalf("import of a garbage .deb: %v, want one 'import kernel: dpkg -x %s: …'", err, bad)
	}
	if err := h.call(api.MethodKernelShow, api.NameParams{Name: "bad"}, nil); !isCode(err, api.CodeNotFound) {
		t.Errorf("failed import registered a kernel: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(h.paths.CacheDir, "downloads")); len(ents) != 0 {
		t.Errorf("the uploaded .deb was left in the cache: %v", ents)
	}
}
