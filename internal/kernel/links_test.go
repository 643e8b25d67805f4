package kernel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A crafted kernel package cannot pull host files into the initramfs, the
// kernel directory or the module disk through symlinks.
func TestImportRefusesLinksOutOfThePackage(t *testing.T) {
	for _, c := range []struct {
		name, want string
		tweak      func(root, mods string)
	}{
		{"module linked to /etc/passwd", "kernel/drivers/block/virtio_blk.ko in the package is a symlink to /etc/passwd", func(root, mods string) {
			p := filepath.Join(mods, "kernel/drivers/block/virtio_blk.ko")
			os.Remove(p)
			must(t, os.Symlink("/etc/passwd", p))
		}},
		{"module climbing out", "which leaves the module directory", func(root, mods string) {
			p := filepath.Join(mods, "kernel/fs/overlayfs/overlay.ko")
			os.Remove(p)
			must(t, os.Symlink("../../../../../../../../../../etc/passwd", p))
		}},
		{"module climbing out through a link to its own directory", "which leaves the module directory", func(root, mods string) {
			// "here" -> "." is inside; "here/here/…/../../…/etc/passwd" is
			// inside when cleaned as text, but the kernel resolves each
			// "here" to the module directory before each "..": the chain
			// climbs one level per link and reaches the host's /etc/passwd.
			must(t, os.Symlink(".", filepath.Join(mods, "here")))
			p := filepath.Join(mods, "kernel/fs/overlayfs/overlay.ko")
			os.Remove(p)
			up := strings.Count(filepath.Clean(mods), "/") + 2
			must(t, os.Symlink("../../../"+strings.Repeat("here/", up)+strings.Repeat("../", up)+"etc/passwd", p))
		}},
		{"vmlinuz linked to a host file", "boot/vmlinuz-6.1.0-99-cloud-amd64 in the package is not a regular file", func(root, mods string) {
			p := filepath.Join(root, "boot/vmlinuz-6.1.0-99-cloud-amd64")
			os.Remove(p)
			must(t, os.Symlink("/etc/passwd", p))
		}},
		{"boot directory linked to a host directory", "boot in the package is not a directory", func(root, mods string) {
			host := t.TempDir() // stands for the host's /boot
			must(t, os.Rename(filepath.Join(root, "boot"), filepath.Join(host, "boot")))
			must(t, os.Symlink(filepath.Join(host, "boot"), filepath.Join(root, "boot")))
		}},
		{"module directory linked to a host directory", "lib/modules in the package is not a directory", func(root, mods string) {
			host := t.TempDir() // stands for a host directory holding the release
			must(t, os.Rename(filepath.Join(root, "lib/modules"), filepath.Join(host, "modules")))
			must(t, os.Symlink(filepath.Join(host, "modules"), filepath.Join(root, "lib/modules")))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			deb := fakeKernelDebWith(t, c.tweak)
			dir := filepath.Join(t.TempDir(), "k")
			_, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: dir, DebFile: deb})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("refused import left %s", dir)
			}
		})
	}
	// An in-tree relative link is fine.
	deb := fakeKernelDebWith(t, func(root, mods string) {
		must(t, os.Symlink("kernel/fs/fat/vfat.ko", filepath.Join(mods, "vfat-alias.ko.txt")))
	})
	if _, err := ImportDebianCloud(context.Background(), ImportOptions{Dir: filepath.Join(t.TempDir(), "k"), DebFile: deb}); err != nil {
		t.Fatalf("package with an in-tree link: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
