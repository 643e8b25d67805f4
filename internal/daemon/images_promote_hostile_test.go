package daemon

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts/artifactstest"
)

// TestPromoteHostileOverlay: a guest that corrupted its overlay disk's
// superblock (s_inode_size = 129 panicked the ext4 reader and killed
// bangerd) gets a clear error from promote; the daemon keeps serving, no
// image is recorded, and the same VM promotes once the disk is sane.
func TestPromoteHostileOverlay(t *testing.T) {
	h := newHarness(t)
	reg, push := artifactstest.OCIRegistry(t)
	push("base:1", map[string]string{"etc/os-release": "ID=base\n"}, v1.Config{})
	must(t, h.call(api.MethodImagePull, api.PullImageParams{Ref: reg + "/base:1", Name: "base"}, nil))
	vm := h.createWith(api.CreateParams{Name: "p1", Image: "base"})
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "p1"}, nil))
	overlay := filepath.Join(h.paths.VMDir(vm.ID), "overlay.ext4")
	if out, err := exec.Command("debugfs", "-w", "-R", "mkdir upper", overlay).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	f, err := os.OpenFile(overlay, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	orig := make([]byte, 2)
	f.ReadAt(orig, 1024+0x58)
	f.WriteAt(binary.LittleEndian.AppendUint16(nil, 129), 1024+0x58)

	err = h.call(api.MethodImagePromote, api.PromoteImageParams{VM: "p1", Name: "bad"}, nil)
	if err == nil || !strings.Contains(err.Error(), "inode size 129") || !strings.Contains(err.Error(), "promote p1") {
		t.Fatalf("promote of a corrupt overlay: %v", err)
	}
	var list []api.Image
	must(t, h.call(api.MethodImageList, nil, &list))
	for _, im := range list {
		if im.Name == "bad" {
			t.Errorf("a failed promote recorded image %+v", im)
		}
	}
	f.WriteAt(orig, 1024+0x58)
	must(t, h.call(api.MethodImagePromote, api.PromoteImageParams{VM: "p1", Name: "good"}, nil))
}
