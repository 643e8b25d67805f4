package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestExt4ReaderOnMkfs reads a filesystem made by mkfs.ext4 -d (the
// writer of VM overlay disks: metadata_csum, htree directories, extent
// trees) and compares it with the source directory.
func TestExt4ReaderOnMkfs(t *testing.T) {
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB: many extents' worth
	os.WriteFile(filepath.Join(src, "big"), big, 0o640)
	os.Mkdir(filepath.Join(src, "many"), 0o755)
	for i := 0; i < 500; i++ { // enough entries for an htree directory
		os.WriteFile(filepath.Join(src, "many", fmt.Sprintf("file-with-a-long-name-%04d", i)), []byte(fmt.Sprint(i)), 0o600)
	}
	long := strings.Repeat("d/", 40) + "target"
	os.Symlink(long, filepath.Join(src, "slowlink"))
	os.Symlink("short", filepath.Join(src, "fastlink"))
	os.Link(filepath.Join(src, "big"), filepath.Join(src, "big2"))
	f, err := os.OpenFile(filepath.Join(src, "sparse"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("end"), 50<<20)
	f.Close()
	img := filepath.Join(t.TempDir(), "fs.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", src, img, "128M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fs, err := OpenExt4(fh)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := readImageFile(fs, "/big", 10<<20); !bytes.Equal(got, big) {
		t.Errorf("big: read %d bytes, differ from source", len(got))
	}
	if in := statT(t, fs, "/big"); in.Mode&0o777 != 0o640 || in.Links != 2 || statT(t, fs, "/big2").Num != in.Num {
		t.Errorf("big: mode %o links %d", in.Mode&0o777, in.Links)
	}
	root := statT(t, fs, "/many")
	ents, err := fs.ReadDir(root)
	if err != nil || len(ents) != 500 {
		t.Fatalf("many: %d entries, %v", len(ents), err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	if names[0] != "file-with-a-long-name-0000" || content(t, fs, "/many/"+names[499]) != "499" {
		t.Errorf("many: %s ...", names[0])
	}
	for p, want := range map[string]string{"/slowlink": long, "/fastlink": "short"} {
		if got, err := fs.Readlink(statT(t, fs, p)); got != want || err != nil {
			t.Errorf("%s → %q, %v", p, got, err)
		}
	}
	sp := statT(t, fs, "/sparse")
	r, _ := fs.Open(sp)
	b, _ := io.ReadAll(r)
	if len(b) != 50<<20+3 || string(b[len(b)-3:]) != "end" || b[1000] != 0 {
		t.Errorf("sparse: %d bytes", len(b))
	}
}
