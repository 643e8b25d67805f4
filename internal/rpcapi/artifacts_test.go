package rpcapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
)

// artifactsDaemon serves the artifacts service on a unix socket in a
// directory of its own; the client is told nothing of the daemon's paths.
func artifactsDaemon(t *testing.T) (*client.Client, config.Paths) {
	t.Helper()
	root := t.TempDir()
	paths := config.Paths{ConfigDir: filepath.Join(root, "config"), StateDir: filepath.Join(root, "state"),
		CacheDir: filepath.Join(root, "cache"), RuntimeDir: filepath.Join(root, "run")}
	for _, d := range []string{paths.StateDir, paths.CacheDir, paths.ImageDir(), paths.KernelDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := config.Load(filepath.Join(root, "none.toml"))
	st, err := store.Open(context.Background(), paths.Database())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := artifacts.New(artifacts.Deps{Paths: paths, Config: cfg, Log: slog.New(slog.DiscardHandler), Store: st})
	sock := filepath.Join(root, "d.sock")
	l, err := rpc.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rpc.Server{Handlers: rpcapi.ArtifactsHandlers(svc), Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, l); close(done) }()
	t.Cleanup(func() {
		cancel()
		l.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	c := &client.Client{DialForTest: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return c, paths
}

func mkext4(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "tree", "sbin"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "tree", "sbin", "init"), []byte("#!/bin/sh\n"), 0o755))
	img := filepath.Join(dir, "rootfs.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", filepath.Join(dir, "tree"), img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	must(t, err)
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// image register over the socket: the bytes are the request body (several
// chunks); a refusal before the body is read still reaches the client as
// the daemon's error, not as a broken connection.
func TestRegisterOverTheSocket(t *testing.T) {
	c, paths := artifactsDaemon(t)
	rootfs := mkext4(t)
	var stages []string
	info, err := c.ImageRegister(context.Background(), api.RegisterImageParams{Name: "up", Rootfs: "/client/side/rootfs.ext4",
		Size: int64(len(rootfs))}, bytes.NewReader(rootfs), func(p api.Progress) { stages = append(stages, p.Stage) })
	must(t, err)
	if info.Init != "/sbin/init" || info.SizeBytes != int64(len(rootfs)) || !strings.HasPrefix(info.Path, paths.ImageDir()) {
		t.Errorf("registered %+v", info)
	}
	if !strings.Contains(strings.Join(stages, ","), api.StageUpload) {
		t.Errorf("progress stages %v, want %s", stages, api.StageUpload)
	}
	_, err = c.ImageRegister(context.Background(), api.RegisterImageParams{Name: "up", Size: int64(len(rootfs))},
		bytes.NewReader(rootfs), nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeConflict {
		t.Fatalf("register onto a taken name: %v, want the daemon's conflict", err)
	}
}

// kernel import --kernel over the socket: the client packs the files into
// the body's tar, the daemon unpacks and registers them.
func TestKernelImportFilesOverTheSocket(t *testing.T) {
	c, paths := artifactsDaemon(t)
	vmlinux := "\x7fELF" + strings.Repeat("k", 3<<20) // several chunks
	info, err := c.KernelImportFiles(context.Background(), api.ImportKernelFilesParams{Name: "mine", Kernel: "/client/vmlinux", Release: "6.1-x"},
		client.Upload{R: strings.NewReader(vmlinux), Size: int64(len(vmlinux))}, client.Upload{}, nil)
	must(t, err)
	if info.Release != "6.1-x" || !strings.HasPrefix(info.Dir, paths.KernelDir()) {
		t.Fatalf("imported %+v", info)
	}
	if b, err := os.ReadFile(filepath.Join(info.Dir, "vmlinux")); err != nil || string(b) != vmlinux {
		t.Errorf("vmlinux: %d bytes (%v), want %d", len(b), err, len(vmlinux))
	}
	// A file shorter than announced fails on the client's side, and the
	// daemon registers nothing.
	_, err = c.KernelImportFiles(context.Background(), api.ImportKernelFilesParams{Name: "short", Release: "6.1-x"},
		client.Upload{R: strings.NewReader(vmlinux[:1000]), Size: int64(len(vmlinux))}, client.Upload{}, nil)
	if err == nil || !strings.Contains(err.Error(), "did the file change") {
		t.Fatalf("short kernel file: %v", err)
	}
	if _, err := c.KernelShow(context.Background(), "short"); err == nil {
		t.Fatal("a cut upload registered a kernel")
	}
}

// image export over the socket: the catalog goes up as the request body,
// the bundle comes back as the response body, and its digest is the
// entry's.
func TestExportOverTheSocket(t *testing.T) {
	c, _ := artifactsDaemon(t)
	rootfs := mkext4(t)
	_, err := c.ImageRegister(context.Background(), api.RegisterImageParams{Name: "base", Size: int64(len(rootfs))}, bytes.NewReader(rootfs), nil)
	must(t, err)
	var bundle bytes.Buffer
	res, err := c.ImageExport(context.Background(), api.ExportImageParams{Name: "base", URL: "base.tar.zst"},
		strings.NewReader(`{"version":1,"images":[]}`), &bundle, nil)
	must(t, err)
	sum := sha256.Sum256(bundle.Bytes())
	if res.Entry.SHA256 != hex.EncodeToString(sum[:]) || res.Entry.Size != int64(bundle.Len()) || !strings.Contains(res.CatalogFile, res.Entry.SHA256) {
		t.Fatalf("export: %+v for %d bytes", res, bundle.Len())
	}
}

// A client that goes away mid-upload (interrupted CLI) leaves nothing:
// no image, no temporary file in the image store.
func TestRegisterClientGoneMidUpload(t *testing.T) {
	c, paths := artifactsDaemon(t)
	rootfs := mkext4(t)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		pw.Write(rootfs[:2<<20])
		cancel() // the CLI is interrupted; the rest never comes
	}()
	_, err := c.ImageRegister(ctx, api.RegisterImageParams{Name: "gone", Size: int64(len(rootfs))}, pr, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted register: %v", err)
	}
	pw.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, _ := os.ReadDir(paths.ImageDir())
		_, serr := c.ImageShow(context.Background(), "gone")
		if len(ents) == 0 && serr != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after an interrupted upload: image store %v, image show err %v", ents, serr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
