package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/progress"
)

// maxCatalogFile bounds the catalog a client sends to export.
const maxCatalogFile = 16 << 20

// Export writes an image as a bundle to bundle (the client's file: the
// daemon opens no path of the client's) and adds its entry to the catalog
// read from catalog (empty: a new one), returning the updated catalog, so
// that a directory of bundles plus catalog.json served as static files
// is a team catalog (`image_catalog = "https://.../catalog.json"`). The
// catalog is checked before any byte of the bundle is written.
func (s *Service) Export(ctx context.Context, p api.ExportImageParams, catalog io.Reader, bundle io.Writer, r progress.Reporter) (api.ExportResult, error) {
	var res api.ExportResult
	im, err := s.getImage(ctx, p.Name)
	if err != nil {
		return res, err
	}
	cat := &image.Catalog{Version: 1}
	if catalog != nil {
		b, err := io.ReadAll(io.LimitReader(catalog, maxCatalogFile+1))
		if err != nil {
			return res, fmt.Errorf("image export: receive the catalog: %w", err)
		}
		if len(b) > maxCatalogFile {
			return res, api.Invalidf("image export: the catalog is over %d bytes", maxCatalogFile)
		}
		if len(b) > 0 {
			name := p.Catalog
			if name == "" {
				name = "(sent)"
			}
			if cat, err = image.ParseCatalog(b, name); err != nil {
				return res, api.Invalidf("image export: %v", err)
			}
		}
	}
	if p.URL == "" {
		p.URL = im.Name + ".tar.zst"
	}
	init := im.Init
	if init == "" {
		init = "/sbin/init" // unrecorded: banger's own golden image
	}
	kern := im.Kernel
	if kern == "" {
		kern = s.cfg.DefaultKernel
	}
	h := sha256.New()
	bar := progress.NewBytes(r, api.StageExport, "bundle "+im.Name)
	var written int64
	w := io.MultiWriter(&ctxWriter{ctx, bundle}, h, countFn(func(n int64) { written += n; bar.Update(written, 0) }))
	if _, err := image.WriteBundle(w, im.Path, image.Manifest{Name: im.Name, Kernel: kern, Init: init, HasSSHD: im.HasSSHD, Source: im.Source,
		Runtime: image.Runtime(im.Runtime)}); err != nil {
		return res, err
	}
	bar.Finish()
	entry := image.CatalogImage{Name: im.Name, Description: im.Source, URL: p.URL, SHA256: hex.EncodeToString(h.Sum(nil)), Size: written, Kernel: kern}
	text, err := addCatalogEntry(cat, entry)
	if err != nil {
		return res, err
	}
	res = api.ExportResult{CatalogFile: text, Entry: api.CatalogEntry{Name: entry.Name, Description: entry.Description,
		URL: entry.URL, SHA256: entry.SHA256, Size: entry.Size, Kernel: entry.Kernel}}
	return res, nil
}

// addCatalogEntry adds (or replaces) an entry in a catalog and returns
// the catalog's text.
func addCatalogEntry(cat *image.Catalog, e image.CatalogImage) (string, error) {
	cat.Version = 1
	replaced := false
	for i := range cat.Images {
		if cat.Images[i].Name == e.Name {
			cat.Images[i], replaced = e, true
		}
	}
	if !replaced {
		cat.Images = append(cat.Images, e)
	}
	b, err := json.MarshalIndent(cat, "", "  ")
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

type countFn func(int64)

func (c countFn) Write(p []byte) (int, error) { c(int64(len(p))); return len(p), nil }

// ctxWriter stops a long write when its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

func (s *Service) imageCatalog(ctx context.Context) (api.CatalogList, error) {
	cat, err := image.LoadCatalog(ctx, s.cfg.ImageCatalog, nil)
	if err != nil {
		return api.CatalogList{}, err
	}
	out := api.CatalogList{Source: cat.Source, Entries: []api.CatalogEntry{}}
	for _, e := range cat.Images {
		_, err := s.store.GetImage(ctx, e.Name)
		out.Entries = append(out.Entries, api.CatalogEntry{Name: e.Name, Description: e.Description, URL: e.URL, SHA256: e.SHA256,
			Size: e.Size, Kernel: e.Kernel, Ref: e.Ref, Build: e.Build, Installed: err == nil})
	}
	return out, nil
}
