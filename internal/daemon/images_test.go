package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/artifacts/artifactstest"
)

// ociRegistry is artifactstest.OCIRegistry (run_image_test.go uses it).
func ociRegistry(t *testing.T) (host string, push func(repo string, files map[string]string, cfg ...v1.Config)) {
	return artifactstest.OCIRegistry(t)
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
	reg, push := artifactstest.OCIRegistry(t)
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

// TestImageExportCatalogPromote: export a bundle into a directory served
// on loopback as a catalog, pull it back under another name, then promote
// a stopped VM of it with a change written into its overlay.
func TestImageExportCatalogPromote(t *testing.T) {
	h := newHarness(t)
	reg, push := artifactstest.OCIRegistry(t)
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
