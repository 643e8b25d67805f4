package agent

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCopyInIntoPlacement(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	root := t.TempDir()
	tree := fillWith(
		tarEntry{name: "d/", typ: tar.TypeDir, mode: 0o750},
		tarEntry{name: "d/x", body: "x", mode: 0o600},
	)
	// An existing directory: the copy lands inside it, as d.
	if _, err := c.CopyIn(testCtx(t), proto.CopyInParams{Into: root, Base: "d"}, tree); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(root, "d", "x")) != "x" {
		t.Fatal("not copied into the directory")
	}
	st, _ := os.Stat(filepath.Join(root, "d"))
	if st.Mode().Perm() != 0o750 {
		t.Errorf("dir mode %v", st.Mode())
	}
	// A new name in an existing parent: d becomes that name.
	if _, err := c.CopyIn(testCtx(t), proto.CopyInParams{Into: filepath.Join(root, "renamed"), Base: "d"}, tree); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(root, "renamed", "x")) != "x" {
		t.Fatal("not renamed")
	}
	// A file onto an existing file replaces it; a symlink there is replaced, not followed.
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, []byte("keep"), 0o644)
	os.Symlink(outside, filepath.Join(root, "link"))
	file := fillWith(tarEntry{name: "f", body: "new", mode: 0o640})
	if _, err := c.CopyIn(testCtx(t), proto.CopyInParams{Into: filepath.Join(root, "link"), Base: "f"}, file); err != nil {
		t.Fatal(err)
	}
	if readFile(t, outside) != "keep" || readFile(t, filepath.Join(root, "link")) != "new" {
		t.Fatal("wrote through the symlink")
	}
}

func TestCopyInIntoKeepsMtimes(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	root := t.TempDir()
	old := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	_, err := c.CopyIn(testCtx(t), proto.CopyInParams{Into: root, Base: "d"}, func(tw *client.TarWriter) error {
		tw.WriteHeader(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: old})
		tw.WriteHeader(&tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, ModTime: old})
		_, err := tw.Write([]byte("1"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d", "d/f"} {
		st, _ := os.Stat(filepath.Join(root, p))
		if !st.ModTime().Equal(old) {
			t.Errorf("%s: mtime %v, want %v", p, st.ModTime(), old)
		}
	}
}

func TestCopyInIntoRefusals(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "file"), []byte("f"), 0o644)
	dir := fillWith(tarEntry{name: "d/", typ: tar.TypeDir}, tarEntry{name: "d/x", body: "x"})
	for _, tc := range []struct {
		name string
		p    proto.CopyInParams
		fill func(*client.TarWriter) error
		want string
	}{
		{"missing parent", proto.CopyInParams{Into: filepath.Join(root, "no", "such"), Base: "d"}, dir, "parent directory " + filepath.Join(root, "no") + " does not exist"},
		{"missing dir with slash", proto.CopyInParams{Into: filepath.Join(root, "new") + "/", Base: "d"}, dir, "does not exist in the guest"},
		{"missing dir with /.", proto.CopyInParams{Into: filepath.Join(root, "new") + "/.", Base: "d"}, dir, "does not exist in the guest"}, // as on the host (hostcopy.Target)
		{"archive into a missing dir", proto.CopyInParams{Into: filepath.Join(root, "new")}, dir, "directory " + filepath.Join(root, "new") + " does not exist"},
		{"dir onto file", proto.CopyInParams{Into: filepath.Join(root, "file"), Base: "d"}, dir, "cannot copy a directory onto"},
		{"entry outside the base", proto.CopyInParams{Into: root, Base: "d"}, fillWith(tarEntry{name: "other", body: "o"}), `announced as "d"`},
		{"bad base", proto.CopyInParams{Into: root, Base: "../d"}, dir, "bad base name"},
	} {
		_, err := c.CopyIn(testCtx(t), tc.p, tc.fill)
		var re *client.RequestError
		if !errors.As(err, &re) || !strings.Contains(re.Message, tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, never := range []string{"no", "new"} {
		if _, err := os.Stat(filepath.Join(root, never)); err == nil {
			t.Errorf("created %s", never)
		}
	}
	if readFile(t, filepath.Join(root, "file")) != "f" {
		t.Error("file replaced")
	}
}
