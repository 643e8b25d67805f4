package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/progress"
)

// exportImage writes an image as a bundle and adds its entry to a catalog
// file beside it, so a directory of bundles plus catalog.json served as
// static files is a team catalog (`image_catalog = "https://.../catalog.json"`).
func (s *Service) exportImage(ctx context.Context, p api.ExportImageParams, r progress.Reporter) (api.ExportResult, error) {
	var res api.ExportResult
	im, err := s.getImage(ctx, p.Name)
	if err != nil {
		return res, err
	}
	if !filepath.IsAbs(p.Out) {
		return res, invalid("image export: -o must be an absolute path")
	}
	if p.Catalog == "" {
		p.Catalog = filepath.Join(filepath.Dir(p.Out), "catalog.json")
	}
	if p.URL == "" {
		rel, err := filepath.Rel(filepath.Dir(p.Catalog), p.Out)
		if err != nil {
			return res, err
		}
		p.URL = filepath.ToSlash(rel)
	}
	init := im.Init
	if init == "" {
		init = "/sbin/init" // unrecorded: banger's own golden image
	}
	kern := im.Kernel
	if kern == "" {
		kern = s.cfg.DefaultKernel
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.Out), "."+filepath.Base(p.Out)+".tmp-*")
	if err != nil {
		return res, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	defer tmp.Close()
	h := sha256.New()
	bar := progress.NewBytes(r, api.StageExport, "bundle "+im.Name)
	var written int64
	w := io.MultiWriter(tmp, h, countFn(func(n int64) { written += n; bar.Update(written, 0) }))
	if _, err := image.WriteBundle(w, im.Path, image.Manifest{Name: im.Name, Kernel: kern, Init: init, HasSSHD: im.HasSSHD, Source: im.Source,
		Runtime: image.Runtime(im.Runtime)}); err != nil {
		return res, err
	}
	bar.Finish()
	if err := tmp.Chmod(0o644); err != nil {
		return res, err
	}
	if err := tmp.Sync(); err != nil {
		return res, err
	}
	if err := os.Rename(tmp.Name(), p.Out); err != nil {
		return res, err
	}
	entry := image.CatalogImage{Name: im.Name, Description: im.Source, URL: p.URL, SHA256: hex.EncodeToString(h.Sum(nil)), Size: written, Kernel: kern}
	if err := addCatalogEntry(p.Catalog, entry); err != nil {
		return res, err
	}
	res = api.ExportResult{Bundle: p.Out, Catalog: p.Catalog, Entry: api.CatalogEntry{Name: entry.Name, Description: entry.Description,
		URL: entry.URL, SHA256: entry.SHA256, Size: entry.Size, Kernel: entry.Kernel}}
	return res, nil
}

// addCatalogEntry adds (or replaces) an entry in a catalog file, creating
// it when missing; the file is replaced atomically.
func addCatalogEntry(path string, e image.CatalogImage) error {
	cat := &image.Catalog{Version: 1}
	if b, err := os.ReadFile(path); err == nil {
		if cat, err = image.ParseCatalog(b, path); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
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
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type countFn func(int64)

func (c countFn) Write(p []byte) (int, error) { c(int64(len(p))); return len(p), nil }

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
