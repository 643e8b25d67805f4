package hostcopy

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type ent struct {
	name, body, link string
	typ              byte
	mode             int64
}

// extract runs entries through an Extractor for dst with base as the
// announced name, stopping at the first error.
func extract(t *testing.T, dst, base string, entries ...ent) error {
	t.Helper()
	x, err := Target(dst, base)
	if err != nil {
		return err
	}
	defer x.Close()
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := x.Entry(h, strings.NewReader(e.body)); err != nil {
			return err
		}
	}
	return x.Finish()
}

func TestExtractPlacement(t *testing.T) {
	dst := t.TempDir()
	tree := []ent{{name: "d/", typ: tar.TypeDir, mode: 0o750}, {name: "d/x", body: "x", mode: 0o4755}, {name: "d/l", typ: tar.TypeSymlink, link: "/etc/shadow"}}
	if err := extract(t, dst, "d", tree...); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dst, "d", "x"))
	if err != nil || st.Mode() != 0o755 {
		t.Fatalf("file mode %v (setuid must go), %v", st.Mode(), err)
	}
	if st, _ := os.Stat(filepath.Join(dst, "d")); st.Mode().Perm() != 0o750 {
		t.Errorf("dir mode %v", st.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(dst, "d", "l")); l != "/etc/shadow" {
		t.Errorf("symlink %q: kept as a symlink, verbatim", l)
	}
	// A new name: d becomes it.
	if err := extract(t, filepath.Join(dst, "e"), "d", tree...); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "e", "x")); string(b) != "x" {
		t.Fatal("not renamed")
	}
	// A file over a file.
	os.WriteFile(filepath.Join(dst, "f"), []byte("old"), 0o644)
	if err := extract(t, filepath.Join(dst, "f"), "g", ent{name: "g", body: "new"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "new" {
		t.Fatal("not replaced")
	}
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	outside := t.TempDir()
	for _, tc := range []struct {
		name    string
		entries []ent
		want    string
	}{
		{"absolute", []ent{{name: "/etc/passwd", body: "x"}}, "not a clean relative path"},
		{"dotdot", []ent{{name: "d/../../escape", body: "x"}}, "not a clean relative path"},
		{"dotdot clean", []ent{{name: "../escape", body: "x"}}, "leave the destination"},
		{"outside the base", []ent{{name: "other", body: "x"}}, `announced "d"`},
		{"symlink then file through it", []ent{{name: "d/", typ: tar.TypeDir}, {name: "d/l", typ: tar.TypeSymlink, link: outside},
			{name: "d/l/pwned", body: "x"}}, "nothing is written through it"},
		{"symlink then dir through it", []ent{{name: "d", typ: tar.TypeSymlink, link: outside}, {name: "d/sub/", typ: tar.TypeDir}}, "nothing is written through it"},
		{"huge name", []ent{{name: "d/" + strings.Repeat("a/", 3000), body: "x"}}, "bytes long"},
		{"huge element", []ent{{name: "d/" + strings.Repeat("a", 300), body: "x"}}, "longer than 255"},
		{"hard link", []ent{{name: "d", typ: tar.TypeLink, link: "/etc/passwd"}}, "hard links"},
		{"device", []ent{{name: "d", typ: tar.TypeChar}}, "not accepted"},
		{"nul", []ent{{name: "d/a\x00b", body: "x"}}, "not a clean relative path"},
	} {
		dst := t.TempDir()
		err := extract(t, dst, "d", tc.entries...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("%s: wrote outside the destination: %v", tc.name, ents)
		}
	}
}

func TestExtractDoesNotFollowExistingSymlinks(t *testing.T) {
	dst, outside := t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(dst, "d"), 0o755)
	os.Symlink(outside, filepath.Join(dst, "d", "sub"))
	os.WriteFile(filepath.Join(outside, "f"), []byte("keep"), 0o644)
	os.Symlink(filepath.Join(outside, "f"), filepath.Join(dst, "d", "f"))
	err := extract(t, dst, "d", ent{name: "d/sub/x", body: "x"})
	if err == nil || !strings.Contains(err.Error(), "nothing is written through it") {
		t.Fatalf("through an existing symlink: %v", err)
	}
	// A file at a symlink's name replaces the symlink.
	if err := extract(t, dst, "d", ent{name: "d/f", body: "new"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "f")); string(b) != "keep" {
		t.Fatal("wrote through the symlink")
	}
}

func TestTargetErrors(t *testing.T) {
	dst := t.TempDir()
	os.WriteFile(filepath.Join(dst, "file"), nil, 0o644)
	if _, err := Target(filepath.Join(dst, "no", "x"), "d"); err == nil || !strings.Contains(err.Error(), "parent directory") {
		t.Errorf("missing parent: %v", err)
	}
	if _, err := Target(filepath.Join(dst, "new")+"/", "d"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing dir/: %v", err)
	}
	err := extract(t, filepath.Join(dst, "file"), "d", ent{name: "d/", typ: tar.TypeDir})
	if err == nil || !strings.Contains(err.Error(), "cannot copy a directory onto") {
		t.Errorf("dir onto file: %v", err)
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(src, "a"), 0o700)
	os.WriteFile(filepath.Join(src, "a", "f"), []byte("hello"), 0o640)
	os.Chmod(filepath.Join(src, "a", "f"), 0o640)
	os.Chmod(filepath.Join(src, "a"), 0o711)
	os.Symlink("../../../etc/passwd", filepath.Join(src, "up"))
	old := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "a", "f"), old, old)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var progressed int64
	if _, err := Archive(tw, src, func(n int64) { progressed += n }); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	if progressed != 5 {
		t.Errorf("progress %d, want 5", progressed)
	}
	dst := t.TempDir()
	x, err := Target(filepath.Join(dst, "copy"), "tree")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Entry(h, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Finish(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dst, "copy", "a", "f"))
	if st.Mode() != 0o640 || !st.ModTime().Equal(old) {
		t.Errorf("file %v %v", st.Mode(), st.ModTime())
	}
	if st, _ := os.Stat(filepath.Join(dst, "copy", "a")); st.Mode().Perm() != 0o711 {
		t.Errorf("dir %v", st.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(dst, "copy", "up")); l != "../../../etc/passwd" {
		t.Errorf("link %q", l)
	}
	if _, err := Archive(tw, filepath.Join(dst, "missing"), nil); err == nil || !strings.Contains(err.Error(), "missing: no such file or directory") {
		t.Errorf("missing source: %v", err)
	}
}
