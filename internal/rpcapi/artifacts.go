package rpcapi

import (
	"context"
	"io"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/rpc"
)

// none is the params of methods that take none.
type none struct{}

// ArtifactsHandlers serves images and kernels.
func ArtifactsHandlers(s *artifacts.Service) Handlers {
	return Handlers{
		api.MethodImageBuild:    Typed(s.Build),
		api.MethodImageList:     Quick(func(ctx context.Context, _ none) ([]api.Image, error) { return s.List(ctx) }),
		api.MethodImagePull:     Typed(s.Pull),
		api.MethodImageShow:     Quick(func(ctx context.Context, p api.NameParams) (api.ImageInfo, error) { return s.Show(ctx, p.Name) }),
		api.MethodImageDelete:   Quick(func(ctx context.Context, p api.NameParams) (any, error) { return nil, s.Delete(ctx, p.Name) }),
		api.MethodImageRegister: typedUpload(s.Register),
		api.MethodImagePromote:  Typed(s.Promote),
		api.MethodImageExport:   imageExport(s),
		api.MethodImageCatalog:  Quick(func(ctx context.Context, _ none) (api.CatalogList, error) { return s.Catalog(ctx) }),

		api.MethodKernelImport:     kernelImport(s),
		api.MethodKernelImportFile: typedUpload(s.KernelImportFiles),
		api.MethodKernelList:       Quick(func(ctx context.Context, _ none) ([]api.Kernel, error) { return s.KernelList(ctx) }),
		api.MethodKernelPull:       Typed(s.KernelPull),
		api.MethodKernelShow:       Quick(func(ctx context.Context, p api.NameParams) (api.KernelInfo, error) { return s.KernelShow(ctx, p.Name) }),
		api.MethodKernelDelete:     Quick(func(ctx context.Context, p api.NameParams) (any, error) { return nil, s.KernelDelete(ctx, p.Name) }),
		api.MethodKernelCatalog:    Quick(func(ctx context.Context, _ none) (api.CatalogList, error) { return s.KernelCatalog(ctx) }),
	}
}

// typedUpload adapts a method that reads the call's request body (a file
// the client sends).
func typedUpload[P, R any](fn func(context.Context, P, io.Reader, progress.Reporter) (R, error)) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		var p P
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		r, err := fn(ctx, p, c.Body(), Reporter(c))
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// kernelImport reads the request body only for a --deb import: a call
// without one keeps its disconnect watch (rpc.Call.Body ends it).
func kernelImport(s *artifacts.Service) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		var p api.ImportKernelParams
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		var deb io.Reader
		if p.DebFile != "" {
			deb = c.Body()
		}
		k, err := s.KernelImport(ctx, p, deb, Reporter(c))
		if err != nil {
			return nil, err
		}
		return k, nil
	}
}

// imageExport reads the client's catalog from the request body and
// streams the bundle back as the response body.
func imageExport(s *artifacts.Service) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		var p api.ExportImageParams
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		res, err := s.Export(ctx, p, c.Body(), c, Reporter(c))
		if err != nil {
			return nil, err
		}
		return res, nil
	}
}
