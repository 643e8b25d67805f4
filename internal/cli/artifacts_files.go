package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
)

// Files that image and kernel commands send to the daemon, or receive
// from it, travel as the calls' bodies: the daemon opens no path of ours.
// Each helper takes the one client method it needs and the progress
// display, so a command's run function calls it in one line.

// The client methods the helpers use (*client.Client has them all).
type (
	imageRegisterer interface {
		ImageRegister(context.Context, api.RegisterImageParams, io.Reader, func(api.Progress)) (api.ImageInfo, error)
	}
	imageExporter interface {
		ImageExport(context.Context, api.ExportImageParams, io.Reader, io.Writer, func(api.Progress)) (api.ExportResult, error)
	}
	kernelImporter interface {
		KernelImport(context.Context, api.ImportKernelParams, io.Reader, func(api.Progress)) (api.Kernel, error)
	}
	kernelFilesImporter interface {
		KernelImportFiles(context.Context, api.ImportKernelFilesParams, client.Upload, client.Upload, func(api.Progress)) (api.KernelInfo, error)
	}
)

// registerRootfs sends the file p.Rootfs names to image.register.
func registerRootfs(ctx context.Context, c imageRegisterer, p api.RegisterImageParams, show func(api.Progress)) (api.ImageInfo, error) {
	f, size, err := openUpload("image register: --rootfs", p.Rootfs)
	if err != nil {
		return api.ImageInfo{}, err
	}
	defer f.Close()
	p.Rootfs, p.Size = f.Name(), size
	return c.ImageRegister(ctx, p, f, show)
}

// openUpload opens a file to send, by its absolute name (which the
// daemon records), with its size (0 when not a regular file).
func openUpload(what, path string) (*os.File, int64, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = fmt.Errorf("%s: %s is a directory, not a file", what, abs)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		return f, 0, nil // a device or a pipe: size unknown
	}
	return f, st.Size(), nil
}

// importKernelPackage runs kernel.import, sending the --deb file when
// one is given.
func importKernelPackage(ctx context.Context, c kernelImporter, p api.ImportKernelParams, show func(api.Progress)) (api.Kernel, error) {
	var deb io.Reader
	if p.DebFile != "" {
		f, size, err := openUpload("kernel import: --deb", p.DebFile)
		if err != nil {
			return api.Kernel{}, err
		}
		defer f.Close()
		p.DebFile, p.Size, deb = f.Name(), size, f
	}
	return c.KernelImport(ctx, p, deb, show)
}

// sendKernelFiles runs kernel.import_files with the --kernel and
// --modules files.
func sendKernelFiles(ctx context.Context, c kernelFilesImporter, p api.ImportKernelFilesParams, show func(api.Progress)) (api.KernelInfo, error) {
	var ups [2]client.Upload
	for i, f := range []*string{&p.Kernel, &p.Modules} {
		if *f == "" {
			continue
		}
		flag := [2]string{"--kernel", "--modules"}[i]
		file, size, err := openUpload("kernel import: "+flag, *f)
		if err == nil && size == 0 {
			file.Close()
			err = fmt.Errorf("kernel import: %s %s: not a regular file, or empty", flag, file.Name())
		}
		if err != nil {
			return api.KernelInfo{}, err
		}
		defer file.Close()
		*f, ups[i] = file.Name(), client.Upload{R: file, Size: size}
	}
	return c.KernelImportFiles(ctx, p, ups[0], ups[1], show)
}

// exportBundle runs image.export: it sends the catalog file (if there is
// one), writes the bundle the daemon streams back to a temporary file
// beside out, and only when the whole call succeeded renames it into
// place and replaces the catalog; on any failure neither file changes.
func exportBundle(ctx context.Context, c imageExporter, p api.ExportImageParams, out, catalog string, show func(api.Progress)) (api.ExportResult, error) {
	out, err := filepath.Abs(out)
	if err != nil {
		return api.ExportResult{}, err
	}
	if catalog == "" {
		catalog = filepath.Join(filepath.Dir(out), "catalog.json")
	}
	if catalog, err = filepath.Abs(catalog); err != nil {
		return api.ExportResult{}, err
	}
	if p.URL == "" {
		rel, err := filepath.Rel(filepath.Dir(catalog), out)
		if err != nil {
			return api.ExportResult{}, err
		}
		p.URL = filepath.ToSlash(rel)
	}
	p.Catalog = catalog
	old, err := os.ReadFile(catalog)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return api.ExportResult{}, fmt.Errorf("image export: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return api.ExportResult{}, fmt.Errorf("image export: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	defer tmp.Close()
	res, err := c.ImageExport(ctx, p, bytes.NewReader(old), tmp, show)
	if err != nil {
		return res, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return res, err
	}
	if err := tmp.Sync(); err != nil {
		return res, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return res, err
	}
	if err := replaceFileAtomic(catalog, []byte(res.CatalogFile), 0o644); err != nil {
		return res, fmt.Errorf("image export: %s written, but the catalog not: %w", out, err)
	}
	res.Bundle, res.Catalog, res.CatalogFile = out, catalog, ""
	return res, nil
}

// replaceFileAtomic replaces path with b: readers see the old file or the
// new one, never part of it.
func replaceFileAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
