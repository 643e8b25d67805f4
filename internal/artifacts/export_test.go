package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
)

// registered registers an ext4 image named name from an upload.
func registered(t *testing.T, s *Service, name string) []byte {
	t.Helper()
	rootfs := ext4With(t, map[string]string{"sbin/init": "#!/bin/sh\n"})
	_, err := s.Register(context.Background(), api.RegisterImageParams{Name: name, Size: int64(len(rootfs))}, bytes.NewReader(rootfs), nil)
	must(t, err)
	return rootfs
}

// Export streams the bundle to a writer (no file of the client's is
// opened) and returns the sent catalog with the entry added.
func TestExportToAWriter(t *testing.T) {
	s, _ := newTestService(t)
	rootfs := registered(t, s, "base")
	old := `{"version":1,"images":[{"name":"other","url":"other.tar.zst","sha256":"` + strings.Repeat("a", 64) + `"}]}`
	var bundle bytes.Buffer
	var ev events
	res, err := s.Export(context.Background(), api.ExportImageParams{Name: "base", URL: "b/base.tar.zst"}, strings.NewReader(old), &bundle, &ev)
	must(t, err)
	sum := sha256.Sum256(bundle.Bytes())
	if res.Entry.SHA256 != hex.EncodeToString(sum[:]) || res.Entry.Size != int64(bundle.Len()) || res.Entry.URL != "b/base.tar.zst" || res.Bundle != "" {
		t.Errorf("result %+v for a bundle of %d bytes", res, bundle.Len())
	}
	var got bytes.Buffer
	m, err := image.ReadBundle(bytes.NewReader(bundle.Bytes()), &got, 1<<30)
	must(t, err)
	if m.Name != "base" || m.Init != "/sbin/init" || !bytes.Equal(got.Bytes(), rootfs) {
		t.Errorf("bundle manifest %+v, rootfs %d bytes (want %d)", m, got.Len(), len(rootfs))
	}
	cat, err := image.ParseCatalog([]byte(res.CatalogFile), "result")
	must(t, err)
	if len(cat.Images) != 2 || cat.Images[0].Name != "other" || cat.Images[1].SHA256 != res.Entry.SHA256 || !strings.HasSuffix(res.CatalogFile, "}\n") {
		t.Errorf("catalog %q", res.CatalogFile)
	}
	if ev.stage(api.StageExport) == 0 {
		t.Errorf("no export progress: %+v", ev.all)
	}
	// No catalog sent: a new one, with the default URL.
	res, err = s.Export(context.Background(), api.ExportImageParams{Name: "base"}, nil, io.Discard, nil)
	must(t, err)
	if !strings.Contains(res.CatalogFile, `"url": "base.tar.zst"`) {
		t.Errorf("new catalog %q", res.CatalogFile)
	}
}

// A broken catalog fails before a byte of the bundle is written; a writer
// that fails (the client went away) fails the export.
func TestExportErrors(t *testing.T) {
	s, _ := newTestService(t)
	registered(t, s, "base")
	var bundle bytes.Buffer
	_, err := s.Export(context.Background(), api.ExportImageParams{Name: "base", Catalog: "/pub/catalog.json"}, strings.NewReader("{not json"), &bundle, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeInvalid || !strings.Contains(err.Error(), "/pub/catalog.json") || bundle.Len() != 0 {
		t.Errorf("broken catalog: %v, %d bundle bytes written", err, bundle.Len())
	}
	_, err = s.Export(context.Background(), api.ExportImageParams{Name: "base"}, nil, failingWriter{}, nil)
	if err == nil || !strings.Contains(err.Error(), "client gone") {
		t.Errorf("failing writer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = s.Export(ctx, api.ExportImageParams{Name: "base"}, nil, io.Discard, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled export: %v", err)
	}
	if _, err = s.Export(context.Background(), api.ExportImageParams{Name: "nope"}, nil, io.Discard, nil); !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
		t.Errorf("unknown image: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }
