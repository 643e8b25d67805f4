package artifacts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// The rootfs comes from a reader (here a pipe, as the rpc body is): the
// path the client names does not exist on the daemon's side and is only
// recorded in the source.
func TestRegisterFromUpload(t *testing.T) {
	s, paths := newTestService(t)
	rootfs := ext4With(t, map[string]string{"sbin/init": "#!/bin/sh\n", "usr/sbin/sshd": "x"})
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(iotestCopy(pw, rootfs)) }()
	var ev events
	label := "/home/someone/elsewhere/rootfs.ext4"
	info, err := s.Register(context.Background(), api.RegisterImageParams{Name: "up", Rootfs: label, Size: int64(len(rootfs))}, pr, &ev)
	must(t, err)
	if info.Source != "file "+label || info.Init != "/sbin/init" || !info.HasSSHD || info.SizeBytes != int64(len(rootfs)) {
		t.Errorf("registered %+v", info)
	}
	got, err := os.ReadFile(info.Path)
	must(t, err)
	if !bytes.Equal(got, rootfs) {
		t.Errorf("stored image differs from the upload (%d bytes, want %d)", len(got), len(rootfs))
	}
	if !within(paths.ImageDir(), info.Path) {
		t.Errorf("image at %s, outside the image store", info.Path)
	}
	if ev.stage(api.StageUpload) == 0 {
		t.Errorf("no upload progress: %+v", ev.all)
	}
	if _, err := os.Stat(label); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("test assumption: %s exists", label)
	}
}

func iotestCopy(w io.Writer, b []byte) error {
	_, err := io.Copy(w, iotest.HalfReader(bytes.NewReader(b)))
	return err
}

// A body that ends before the announced size (the client died, the file
// shrank) registers nothing and leaves no file.
func TestRegisterTruncatedUpload(t *testing.T) {
	s, paths := newTestService(t)
	rootfs := ext4With(t, nil)
	_, err := s.Register(context.Background(), api.RegisterImageParams{Name: "cut", Size: int64(len(rootfs))},
		bytes.NewReader(rootfs[:len(rootfs)/2]), nil)
	if err == nil || !strings.Contains(err.Error(), "were announced") || !strings.Contains(err.Error(), "nothing was registered") {
		t.Fatalf("truncated upload: %v", err)
	}
	assertNoImage(t, s, paths, "cut")
	// A body that fails (the connection dropped) is the same.
	_, err = s.Register(context.Background(), api.RegisterImageParams{Name: "cut"},
		io.MultiReader(bytes.NewReader(rootfs[:4096]), iotest.ErrReader(io.ErrUnexpectedEOF)), nil)
	if err == nil || !strings.Contains(err.Error(), "upload failed after 4 KiB") {
		t.Fatalf("failed body: %v", err)
	}
	assertNoImage(t, s, paths, "cut")
}

// Bytes that are not ext4 get a clear error naming the client's file.
func TestRegisterBadRootfs(t *testing.T) {
	s, paths := newTestService(t)
	_, err := s.Register(context.Background(), api.RegisterImageParams{Name: "bad", Rootfs: "/x/notes.txt"},
		strings.NewReader(strings.Repeat("not a filesystem\n", 1000)), nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeInvalid || !strings.Contains(err.Error(), "/x/notes.txt") ||
		!strings.Contains(err.Error(), "an ext4 filesystem image is expected") || strings.Contains(err.Error(), paths.ImageDir()) {
		t.Fatalf("bad rootfs: %v", err)
	}
	assertNoImage(t, s, paths, "bad")
}

// Cancelling mid-upload (the client interrupted, the daemon stops)
// leaves nothing.
func TestRegisterCancelledMidUpload(t *testing.T) {
	s, paths := newTestService(t)
	rootfs := ext4With(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() {
		pw.Write(rootfs[:64<<10])
		cancel()
		pw.Write(rootfs[64<<10 : 128<<10])
		pw.Close()
	}()
	_, err := s.Register(ctx, api.RegisterImageParams{Name: "gone", Size: int64(len(rootfs))}, pr, nil)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("cancelled upload: %v", err)
	}
	assertNoImage(t, s, paths, "gone")
}

// A taken name or a bad one is refused before any byte is stored.
func TestRegisterRefusesBeforeReading(t *testing.T) {
	s, paths := newTestService(t)
	must(t, s.store.PutImage(context.Background(), store.Image{Name: "taken", Path: "/nonexistent", Source: "test"}))
	for name, code := range map[string]string{"Bad_Name": api.CodeInvalid, "taken": api.CodeConflict} {
		_, err := s.Register(context.Background(), api.RegisterImageParams{Name: name}, iotest.ErrReader(errors.New("read")), nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != code {
			t.Errorf("register %q: %v, want code %s", name, err, code)
		}
	}
	_, err := s.Register(context.Background(), api.RegisterImageParams{Name: "nobody"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no file was sent") {
		t.Errorf("register without a body: %v", err)
	}
	assertNoImage(t, s, paths, "nobody")
}
