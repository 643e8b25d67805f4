package agent

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// inPrivateMountNS runs f on a thread of its own in a new mount namespace
// with private propagation, so its mounts never reach the host; the
// thread is discarded afterwards (never unlocked).
func inPrivateMountNS(t *testing.T, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// The image's list is read inside its root and each directory is bound
// from the disk: what the guest writes there lands on the disk.
func TestBindDataDirs(t *testing.T) {
	disk, root := t.TempDir(), t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc/banger"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, proto.DataDirsFile), []byte("/var/lib/docker\n"), 0o644))
	var dirs []string
	err := inPrivateMountNS(t, func() error {
		var err error
		if dirs, err = readDataDirs(root); err != nil {
			return err
		}
		for _, d := range dirs {
			if err := bindDataDir(disk, root, d); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(root, "var/lib/docker/written"), []byte("x"), 0o600)
	})
	if os.Geteuid() != 0 {
		// Unprivileged the bind is refused by the kernel, which proves
		// the request reached it.
		if err == nil || !strings.Contains(err.Error(), unix.EPERM.Error()) {
			t.Fatalf("unprivileged: %v, want EPERM", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(disk, proto.DataDirsDisk, "var/lib/docker/written")); err != nil || string(b) != "x" {
		t.Errorf("the write did not reach the disk: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/docker/written")); err == nil {
		t.Error("the bind mount leaked out of its mount namespace")
	}
}

func TestReadDataDirs(t *testing.T) {
	root := t.TempDir()
	if dirs, err := readDataDirs(root); err != nil || dirs != nil {
		t.Errorf("no list: %q, %v", dirs, err)
	}
	// An absolute symlink in the image leads into the image.
	must(t, os.MkdirAll(filepath.Join(root, "image-etc/banger"), 0o755))
	must(t, os.Symlink("/image-etc", filepath.Join(root, "etc")))
	must(t, os.WriteFile(filepath.Join(root, "image-etc", "banger", "data-dirs"), []byte("/srv/data\n"), 0o644))
	if dirs, err := readDataDirs(root); err != nil || strings.Join(dirs, " ") != "srv/data" {
		t.Errorf("through /etc -> /image-etc: %q, %v", dirs, err)
	}
	must(t, os.WriteFile(filepath.Join(root, "image-etc", "banger", "data-dirs"), []byte("/proc/x\n"), 0o644))
	if _, err := readDataDirs(root); err == nil {
		t.Error("bad list: no error")
	}
	must(t, os.WriteFile(filepath.Join(root, "image-etc", "banger", "data-dirs"), make([]byte, maxDataDirsFile+1), 0o644))
	if _, err := readDataDirs(root); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge list: %v", err)
	}
}
