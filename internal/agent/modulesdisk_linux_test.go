package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdPath is where an O_PATH descriptor points.
func fdPath(t *testing.T, fd int) string {
	t.Helper()
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMkdirInRoot(t *testing.T) {
	root := t.TempDir()
	fd, err := mkdirInRoot(root, "lib/modules/6.1.0-test")
	if err != nil {
		t.Fatal(err)
	}
	if got := fdPath(t, fd); got != filepath.Join(root, "lib/modules/6.1.0-test") {
		t.Errorf("fd at %s", got)
	}
	unix.Close(fd)
	// Again: everything exists already.
	if fd, err = mkdirInRoot(root, "lib/modules/6.1.0-test"); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
}

// A merged-/usr image's absolute /lib -> /usr/lib symlink is followed
// inside the image's root, never on the host (or initramfs).
func TestMkdirInRootStaysInRoot(t *testing.T) {
	root := t.TempDir()
	outside := "/banger-test-" + filepath.Base(root) // does not exist on the host
	os.MkdirAll(filepath.Join(root, outside, "lib"), 0o755)
	must(t, os.Symlink(outside+"/lib", filepath.Join(root, "lib")))
	fd, err := mkdirInRoot(root, "lib/modules/r1")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if got, want := fdPath(t, fd), filepath.Join(root, outside, "lib/modules/r1"); got != want {
		t.Errorf("fd at %s, want %s", got, want)
	}
	if _, err := os.Lstat(outside); err == nil {
		os.RemoveAll(outside)
		t.Fatalf("%s was created on the host", outside)
	}
	// A symlink climbing out is clamped to the root too.
	root2 := t.TempDir()
	must(t, os.Symlink("../../../../..", filepath.Join(root2, "lib")))
	fd2, err := mkdirInRoot(root2, "lib/modules/r1")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd2)
	if got := fdPath(t, fd2); got != filepath.Join(root2, "modules/r1") {
		t.Errorf("escaping symlink led to %s", got)
	}
}

func TestMkdirInRootRefuses(t *testing.T) {
	root := t.TempDir()
	must(t, os.Symlink("nowhere/lib", filepath.Join(root, "lib"))) // dangling
	if _, err := mkdirInRoot(root, "lib/modules/r1"); err == nil {
		t.Error("dangling symlink: no error")
	}
	os.WriteFile(filepath.Join(root, "file"), nil, 0o644)
	if _, err := mkdirInRoot(root, "file/modules"); err == nil {
		t.Error("file in the way: no error")
	}
	for _, bad := range []string{"", "/lib/modules", "../x", "lib/../x", ".."} {
		if _, err := mkdirInRoot(root, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A disk that cannot be mounted is an error the boot step logs; the mount
// point is made either way.
func TestMountModulesDiskReportsFailure(t *testing.T) {
	root := t.TempDir()
	err := mountModulesDisk(filepath.Join(root, "no-such-dev"), root, "6.1.0-test")
	if err == nil || !strings.Contains(err.Error(), "lib/modules/6.1.0-test") {
		t.Fatalf("err = %v", err)
	}
	if st, err := os.Stat(filepath.Join(root, "lib/modules/6.1.0-test")); err != nil || !st.IsDir() {
		t.Errorf("mount point: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
