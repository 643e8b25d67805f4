package workspace

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
)

// Stream is Send's archive, read as it is built; closing it early stops
// the build, and a cancelled context fails it (no trailer is written).
func TestStreamIsTheSentArchive(t *testing.T) {
	r := newRepo(t)
	r.write("a.txt", "alpha\n", 0o644)
	r.write("big.bin", string(bytes.Repeat([]byte("x"), 4<<20)), 0o644)
	r.commitAll("one")
	p := r.plan(Options{})
	var sent bytes.Buffer
	if err := p.Send(testCtx(t), &sent); err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndex(sent.Bytes(), []byte(`{"done":true,"entries":`)); i < sent.Len()-64 {
		t.Fatalf("no trailer at the end of the archive")
	}
	s := p.Stream(testCtx(t))
	streamed, err := io.ReadAll(s)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Entry by entry (a pack built twice need not be byte-identical).
	if got, want := entries(t, streamed), entries(t, sent.Bytes()); got != want {
		t.Errorf("stream:\n%s\nSend:\n%s", got, want)
	}

	// Closed after one read: Close returns once the build has stopped.
	s = p.Stream(testCtx(t))
	s.Read(make([]byte, 512))
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the whole archive")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s = p.Stream(ctx)
	defer s.Close()
	if b, err := io.ReadAll(s); err == nil || bytes.Contains(b, []byte(`{"done":true`)) {
		t.Errorf("a cancelled build: %d bytes, %v", len(b), err)
	}
}

// The packs are built in the host's temporary directory, which may be
// another filesystem than the repository's: git must not rename its
// temporary pack across them (EXDEV). /dev/shm is a tmpfs of its own.
func TestSendFromARepositoryOnAnotherFilesystem(t *testing.T) {
	dir, err := os.MkdirTemp("/dev/shm", "ws-repo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(os.TempDir(), &b) != nil || a.Dev == b.Dev {
		t.Fatalf("%s and %s are on the same filesystem: the test needs two", dir, os.TempDir())
	}
	r := &testRepo{t: t, dir: filepath.Join(dir, "repo")}
	os.MkdirAll(r.dir, 0o755)
	r.git("init", "-q", "-b", "main")
	r.write("a.txt", "alpha\n", 0o644)
	r.commitAll("one")
	for _, o := range []Options{{}, {IncludeUntracked: true}} {
		r.write("new.txt", "untracked\n", 0o644)
		var sent bytes.Buffer
		if err := r.plan(o).Send(testCtx(t), &sent); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if st := r.git("status", "--porcelain", "--ignored"); st != "?? new.txt\n" {
		t.Errorf("the host repository changed: %q", st)
	}
}

// entries lists an archive's entries (name, type, size) and checks its
// trailer.
func entries(t *testing.T, archive []byte) string {
	t.Helper()
	var b strings.Builder
	_, err := client.ReadArchive(bytes.NewReader(archive), func(h *tar.Header, _ io.Reader) error {
		name := h.Name
		if strings.Contains(name, "/objects/pack/pack-") {
			name = name[:strings.LastIndex(name, "pack-")] + "pack-*" + path.Ext(name) // named by content
		}
		fmt.Fprintf(&b, "%s %c %d\n", name, h.Typeflag, h.Size)
		return nil
	})
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	return b.String()
}
