package client

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

// Images and kernels. Files travel as the calls' bodies: the daemon
// opens no path of the client's.

// ImageBuild builds the golden image (image.build).
func (c *Client) ImageBuild(ctx context.Context, p api.BuildImageParams, onProgress func(api.Progress)) (api.Image, error) {
	return call[api.Image](ctx, c, api.MethodImageBuild, p, onProgress)
}

// ImageList lists the images (image.list).
func (c *Client) ImageList(ctx context.Context) ([]api.Image, error) {
	return call[[]api.Image](ctx, c, api.MethodImageList, nil, nil)
}

// ImagePull pulls a catalog entry or an OCI reference (image.pull).
func (c *Client) ImagePull(ctx context.Context, p api.PullImageParams, onProgress func(api.Progress)) (api.ImageInfo, error) {
	return call[api.ImageInfo](ctx, c, api.MethodImagePull, p, onProgress)
}

// ImageShow shows one image in detail (image.show).
func (c *Client) ImageShow(ctx context.Context, name string) (api.ImageInfo, error) {
	return call[api.ImageInfo](ctx, c, api.MethodImageShow, api.NameParams{Name: name}, nil)
}

// ImageDelete deletes an image by exact name (image.delete).
func (c *Client) ImageDelete(ctx context.Context, name string) error {
	return c.Call(ctx, api.MethodImageDelete, api.NameParams{Name: name}, nil, nil)
}

// ImageRegister registers the ext4 file read from rootfs as an image
// (image.register); p.Size, when known, lets the daemon show progress and
// refuse a short upload.
func (c *Client) ImageRegister(ctx context.Context, p api.RegisterImageParams, rootfs io.Reader, onProgress func(api.Progress)) (api.ImageInfo, error) {
	return callBodies[api.ImageInfo](ctx, c, api.MethodImageRegister, p, rootfs, nil, onProgress)
}

// ImagePromote turns a stopped VM's disk state into an image
// (image.promote).
func (c *Client) ImagePromote(ctx context.Context, p api.PromoteImageParams, onProgress func(api.Progress)) (api.ImageInfo, error) {
	return call[api.ImageInfo](ctx, c, api.MethodImagePromote, p, onProgress)
}

// ImageExport writes an image as a bundle to bundle and adds its entry to
// the catalog read from catalog (nil: a new one); the result's
// CatalogFile is the updated catalog (image.export).
func (c *Client) ImageExport(ctx context.Context, p api.ExportImageParams, catalog io.Reader, bundle io.Writer, onProgress func(api.Progress)) (api.ExportResult, error) {
	if catalog == nil {
		catalog = strings.NewReader("")
	}
	return callBodies[api.ExportResult](ctx, c, api.MethodImageExport, p, catalog, bundle, onProgress)
}

// ImageCatalog lists the image catalog (image.catalog).
func (c *Client) ImageCatalog(ctx context.Context) (api.CatalogList, error) {
	return call[api.CatalogList](ctx, c, api.MethodImageCatalog, nil, nil)
}

// KernelImport imports a distro kernel package (kernel.import): with
// p.DebFile set, the .deb read from deb (p.Size bytes), else one apt
// downloads (deb nil).
func (c *Client) KernelImport(ctx context.Context, p api.ImportKernelParams, deb io.Reader, onProgress func(api.Progress)) (api.Kernel, error) {
	if p.DebFile == "" {
		deb = nil
	}
	return callBodies[api.Kernel](ctx, c, api.MethodKernelImport, p, deb, nil, onProgress)
}

// Upload is a file to send: its bytes and how many there are.
type Upload struct {
	R    io.Reader
	Size int64
}

// KernelImportFiles imports a kernel from loose files
// (kernel.import_files): the kernel, and modules when its R is not nil.
func (c *Client) KernelImportFiles(ctx context.Context, p api.ImportKernelFilesParams, kernel, modules Upload, onProgress func(api.Progress)) (api.KernelInfo, error) {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := addUpload(tw, api.KernelFilesEntryKernel, kernel)
		if err == nil && modules.R != nil {
			err = addUpload(tw, api.KernelFilesEntryModules, modules)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	return callBodies[api.KernelInfo](ctx, c, api.MethodKernelImportFile, p, pr, nil, onProgress)
}

// addUpload writes one file as a tar entry; a file that is not the size
// it was said to be is an error, not a corrupt archive.
func addUpload(tw *tar.Writer, name string, u Upload) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: u.Size}); err != nil {
		return err
	}
	n, err := io.Copy(tw, io.LimitReader(u.R, u.Size))
	if err == nil && n != u.Size {
		err = fmt.Errorf("%s: read %d bytes of %d (did the file change?)", name, n, u.Size)
	}
	return err
}

// KernelList lists the kernels (kernel.list).
func (c *Client) KernelList(ctx context.Context) ([]api.Kernel, error) {
	return call[[]api.Kernel](ctx, c, api.MethodKernelList, nil, nil)
}

// KernelPull installs a kernel catalog entry (kernel.pull).
func (c *Client) KernelPull(ctx context.Context, p api.PullKernelParams, onProgress func(api.Progress)) (api.KernelInfo, error) {
	return call[api.KernelInfo](ctx, c, api.MethodKernelPull, p, onProgress)
}

// KernelShow shows one kernel in detail (kernel.show).
func (c *Client) KernelShow(ctx context.Context, name string) (api.KernelInfo, error) {
	return call[api.KernelInfo](ctx, c, api.MethodKernelShow, api.NameParams{Name: name}, nil)
}

// KernelDelete deletes a kernel by exact name (kernel.delete).
func (c *Client) KernelDelete(ctx context.Context, name string) error {
	return c.Call(ctx, api.MethodKernelDelete, api.NameParams{Name: name}, nil, nil)
}

// KernelCatalog lists the kernel catalog (kernel.catalog).
func (c *Client) KernelCatalog(ctx context.Context) (api.CatalogList, error) {
	return call[api.CatalogList](ctx, c, api.MethodKernelCatalog, nil, nil)
}

// callBodies runs method sending in as the request body (nil: none) and
// writing the response body to out (nil: none expected).
func callBodies[T any](ctx context.Context, c *Client, method string, params any, in io.Reader, out io.Writer, onProgress func(api.Progress)) (T, error) {
	var v T
	conn, err := rpc.Start(ctx, c.dial, method, params)
	if err != nil {
		return v, err
	}
	defer conn.Close()
	conn.Body = out
	if in != nil {
		conn.SendBody(in)
	}
	err = conn.Wait(ctx, onProgress, &v)
	return v, err
}
