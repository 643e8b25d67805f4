package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPromote merges an image with an overlay disk made the way a guest
// leaves it: an upper directory with a changed file, a whiteout (0/0
// character device) and an opaque directory.
func TestPromote(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to make whiteouts and trusted.* xattrs, as overlayfs does (the tests run as root)")
	}
	tmp := t.TempDir()
	base, err := os.Create(filepath.Join(tmp, "base.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Flatten(context.Background(), []Layer{memLayer(t, "base", []tent{
		tdir("etc/"), tfile("etc/keep", "k"), tfile("etc/gone", "g"), tfile("etc/mod", "old"),
		tdir("opt/"), tdir("opt/d/"), tfile("opt/d/a", "a"), tfile("opt/d/b", "b"),
		{name: "fifo", typ: '6', mode: 0o600},
	})}, base, FlattenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base.Close()

	src := filepath.Join(tmp, "src")
	up := filepath.Join(src, "upper")
	for _, d := range []string{"etc", "opt/d", "work"} {
		os.MkdirAll(filepath.Join(up, d), 0o755)
	}
	os.MkdirAll(filepath.Join(src, "work"), 0o755)
	os.WriteFile(filepath.Join(up, "etc/mod"), []byte("new"), 0o600)
	os.WriteFile(filepath.Join(up, "newfile"), []byte("n"), 0o644)
	os.WriteFile(filepath.Join(up, "opt/d/c"), []byte("c"), 0o644)
	if err := unix.Mknod(filepath.Join(up, "etc/gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(up, "opt/d"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(tmp, "overlay.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", src, overlay, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	out, err := os.Create(filepath.Join(tmp, "merged.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := Promote(context.Background(), base.Name(), overlay, out, FlattenOptions{}); err != nil {
		t.Fatal(err)
	}
	fsck(t, out.Name())
	fs, err := OpenExt4(out)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/etc/keep": "k", "/etc/mod": "new", "/newfile": "n", "/opt/d/c": "c"} {
		if got := content(t, fs, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if in := statT(t, fs, "/etc/mod"); in.Mode&0o777 != 0o600 {
		t.Errorf("etc/mod mode %o", in.Mode&0o777)
	}
	absent(t, fs, "/etc/gone")
	absent(t, fs, "/opt/d/a")
	xs, _ := fs.Xattrs(statT(t, fs, "/opt/d"))
	if len(xs) != 0 {
		t.Errorf("overlay xattrs leaked into the image: %q", xs)
	}
	insp, err := Inspect(out.Name())
	if err != nil || insp.Init != "" || insp.HasSSHD {
		t.Errorf("inspect: %+v %v", insp, err)
	}
}
