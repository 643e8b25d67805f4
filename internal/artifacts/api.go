package artifacts

import (
	"context"
	"io"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/progress"
)

// The service's typed methods, one per operation; transports
// (internal/rpcapi) adapt them.

// Build builds a golden image (reusing a cached build) and registers it:
// the recipe of the catalog entry p.Name names (debian-bookworm-dev),
// else the default one.
func (s *Service) Build(ctx context.Context, p api.BuildImageParams, r progress.Reporter) (api.Image, error) {
	im, err := s.buildImage(ctx, p, s.recipeFor(ctx, p.Name), r)
	return ImageView(im), err
}

// List lists the images.
func (s *Service) List(ctx context.Context) ([]api.Image, error) {
	ims, err := s.store.ListImages(ctx)
	out := []api.Image{}
	for _, im := range ims {
		out = append(out, ImageView(im))
	}
	return out, err
}

// Pull pulls a catalog entry or an OCI reference and registers it.
func (s *Service) Pull(ctx context.Context, p api.PullImageParams, r progress.Reporter) (api.ImageInfo, error) {
	im, notes, err := s.pullImage(ctx, p, r)
	if err != nil {
		return api.ImageInfo{}, err
	}
	return s.imageInfo(ctx, im, notes)
}

// Show shows one image in detail.
func (s *Service) Show(ctx context.Context, name string) (api.ImageInfo, error) {
	im, err := s.getImage(ctx, name)
	if err != nil {
		return api.ImageInfo{}, err
	}
	return s.imageInfo(ctx, im, nil)
}

// Delete deletes an image by exact name.
func (s *Service) Delete(ctx context.Context, name string) error { return s.deleteImage(ctx, name) }

// Promote turns a stopped VM's disk state into an image.
func (s *Service) Promote(ctx context.Context, p api.PromoteImageParams, r progress.Reporter) (api.ImageInfo, error) {
	im, notes, err := s.promoteImage(ctx, p, r)
	if err != nil {
		return api.ImageInfo{}, err
	}
	return s.imageInfo(ctx, im, notes)
}

// Catalog lists the image catalog, marking what is installed.
func (s *Service) Catalog(ctx context.Context) (api.CatalogList, error) { return s.imageCatalog(ctx) }

// KernelImport imports a Debian kernel package and registers it: the
// cloud kernel or p.Package downloaded with apt, or, when p.DebFile names
// the client's .deb, the file read from deb.
func (s *Service) KernelImport(ctx context.Context, p api.ImportKernelParams, deb io.Reader, r progress.Reporter) (api.Kernel, error) {
	k, err := s.importKernel(ctx, p, deb, r)
	return KernelView(k), err
}

// KernelList lists the kernels.
func (s *Service) KernelList(ctx context.Context) ([]api.Kernel, error) {
	ks, err := s.store.ListKernels(ctx)
	out := []api.Kernel{}
	for _, k := range ks {
		out = append(out, KernelView(k))
	}
	return out, err
}

// KernelPull installs a kernel catalog entry.
func (s *Service) KernelPull(ctx context.Context, p api.PullKernelParams, r progress.Reporter) (api.KernelInfo, error) {
	k, err := s.pullKernel(ctx, p, r)
	if err != nil {
		return api.KernelInfo{}, err
	}
	return s.kernelInfo(ctx, k.Name)
}

// KernelShow shows one kernel in detail.
func (s *Service) KernelShow(ctx context.Context, name string) (api.KernelInfo, error) {
	return s.kernelInfo(ctx, name)
}

// KernelDelete deletes a kernel by exact name.
func (s *Service) KernelDelete(ctx context.Context, name string) error {
	return s.deleteKernel(ctx, name)
}

// KernelCatalog lists the kernel catalog, marking what is installed.
func (s *Service) KernelCatalog(ctx context.Context) (api.CatalogList, error) {
	return s.kernelCatalog(ctx)
}

// SweepBlobs removes what interrupted pulls left (layer blobs kept for a
// re-run to resume from, partial downloads) that nobody came back for
// within a day. Call it before any pull runs.
func (s *Service) SweepBlobs() {
	image.SweepBlobs(s.paths.CacheDir+"/blobs", 24*time.Hour)
	image.SweepBlobs(s.paths.CacheDir+"/downloads", 24*time.Hour)
}
