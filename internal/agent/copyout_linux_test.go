package agent

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
)

type outEntry struct {
	typ   byte
	mode  int64
	body  string
	link  string
	mtime time.Time
}

func copyOut(t *testing.T, c *client.Client, path string) (map[string]outEntry, proto.CopyTrailer, error) {
	t.Helper()
	st, _, err := c.Open(testCtx(t), proto.OpCopyOut, proto.CopyOutParams{Path: path})
	if err != nil {
		return nil, proto.CopyTrailer{}, err
	}
	defer st.Close()
	got := map[string]outEntry{}
	tl, err := client.ReadArchive(st, func(h *tar.Header, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[h.Name] = outEntry{typ: h.Typeflag, mode: h.Mode & 0o7777, body: string(b), link: h.Linkname, mtime: h.ModTime}
		return err
	})
	return got, tl, err
}

func TestCopyOutTree(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	src := filepath.Join(t.TempDir(), "proj")
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin", "run"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(src, "secret"), []byte("s"), 0o600)
	os.Chmod(filepath.Join(src, "secret"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(src, "abs-link"))
	os.Symlink("bin", filepath.Join(src, "dir-link"))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "secret"), old, old)
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(src, "bin"), 0o750)

	got, tl, err := copyOut(t, c, src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]outEntry{
		"proj/":         {typ: tar.TypeDir, mode: 0o755},
		"proj/bin/":     {typ: tar.TypeDir, mode: 0o750},
		"proj/bin/run":  {typ: tar.TypeReg, mode: 0o755, body: "#!/bin/sh\n"},
		"proj/secret":   {typ: tar.TypeReg, mode: 0o600, body: "s"},
		"proj/abs-link": {typ: tar.TypeSymlink, mode: 0o777, link: "/etc/passwd"},
		"proj/dir-link": {typ: tar.TypeSymlink, mode: 0o777, link: "bin"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %v", len(got), len(want), got)
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || g.typ != w.typ || g.mode != w.mode || g.body != w.body || g.link != w.link {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}
	if !got["proj/secret"].mtime.Equal(old) {
		t.Errorf("mtime %v, want %v", got["proj/secret"].mtime, old)
	}
	if len(tl.Skipped) != 1 || tl.Skipped[0] != "proj/fifo" {
		t.Errorf("skipped %v, want the fifo", tl.Skipped)
	}
}

func TestCopyOutFileAndSymlink(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("hello"), 0o640)
	os.Chmod(filepath.Join(dir, "f.txt"), 0o640)
	os.Symlink("f.txt", filepath.Join(dir, "l"))
	got, _, err := copyOut(t, c, filepath.Join(dir, "f.txt"))
	if err != nil || len(got) != 1 || got["f.txt"].body != "hello" || got["f.txt"].mode != 0o640 {
		t.Fatalf("file: %v %v", got, err)
	}
	// The source itself is a symlink: sent as one, not followed.
	got, _, err = copyOut(t, c, filepath.Join(dir, "l"))
	if err != nil || len(got) != 1 || got["l"].typ != tar.TypeSymlink || got["l"].link != "f.txt" {
		t.Fatalf("symlink: %v %v", got, err)
	}
}

func TestCopyOutRefusals(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	missing := filepath.Join(t.TempDir(), "nope")
	_, _, err := copyOut(t, c, missing)
	var re *client.RequestError
	if !errors.As(err, &re) || !strings.Contains(re.Message, missing+": no such file or directory in the guest") {
		t.Fatalf("missing path: %v", err)
	}
	for _, p := range []string{"relative/x", "/"} {
		if _, _, err := copyOut(t, c, p); !errors.As(err, &re) {
			t.Errorf("%q: %v, want a refusal", p, err)
		}
	}
}
