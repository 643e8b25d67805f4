package daemon

import (
	"context"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/rpc"
)

func init() {
	handlerSets = append(handlerSets, imageHandlers)
	// Interrupted pulls leave layer blobs for a re-run to resume from;
	// those nobody came back for within a day go at the next start, with
	// any partial download (no pull runs yet when services start).
	services = append(services, func(ctx context.Context, d *Daemon) (func(), error) {
		image.SweepBlobs(d.paths.CacheDir+"/blobs", 24*time.Hour)
		image.SweepBlobs(d.paths.CacheDir+"/downloads", 24*time.Hour)
		return func() {}, nil
	})
}

// nameParam is the params of the show and delete methods.
type nameParam struct {
	Name string `json:"name"`
}

func imageHandlers(d *Daemon) map[string]rpc.Handler {
	return map[string]rpc.Handler{
		api.MethodImagePull: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.PullImageParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			im, notes, err := d.pullImage(ctx, p, c.Progress)
			if err != nil {
				return nil, err
			}
			return d.imageInfo(ctx, im, notes)
		},
		api.MethodImageShow: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p nameParam
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			im, err := d.getImage(ctx, p.Name)
			if err != nil {
				return nil, err
			}
			return d.imageInfo(ctx, im, nil)
		},
		api.MethodImageDelete: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p nameParam
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			return nil, d.deleteImage(ctx, p.Name)
		},
		api.MethodImageRegister: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.RegisterImageParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			im, notes, err := d.registerImage(ctx, p)
			if err != nil {
				return nil, err
			}
			return d.imageInfo(ctx, im, notes)
		},
		api.MethodImagePromote: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.PromoteImageParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			im, notes, err := d.promoteImage(ctx, p, c.Progress)
			if err != nil {
				return nil, err
			}
			return d.imageInfo(ctx, im, notes)
		},
		api.MethodImageExport: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.ExportImageParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			return d.exportImage(ctx, p, c.Progress)
		},
		api.MethodImageCatalog: func(ctx context.Context, c *rpc.Call) (any, error) { return d.imageCatalog(ctx) },
		api.MethodKernelPull: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.PullKernelParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			k, err := d.pullKernel(ctx, p, c.Progress)
			if err != nil {
				return nil, err
			}
			return d.kernelInfo(ctx, k.Name)
		},
		api.MethodKernelShow: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p nameParam
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			return d.kernelInfo(ctx, p.Name)
		},
		api.MethodKernelDelete: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p nameParam
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			return nil, d.deleteKernel(ctx, p.Name)
		},
		api.MethodKernelImportFile: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.ImportKernelFilesParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			k, err := d.importKernelFiles(ctx, p)
			if err != nil {
				return nil, err
			}
			return d.kernelInfo(ctx, k.Name)
		},
		api.MethodKernelCatalog: func(ctx context.Context, c *rpc.Call) (any, error) { return d.kernelCatalog(ctx) },
	}
}
