package daemon

import (
	"context"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
)

// handlerSets are handler groups defined in their own files (networking,
// workspaces, images), each registered from an init function.
var handlerSets []func(d *Daemon) map[string]rpc.Handler

func (d *Daemon) handlers(shutdown func()) map[string]rpc.Handler {
	hs := d.coreHandlers(shutdown)
	rpcapi.Handlers(hs).Add(rpcapi.NetworkHandlers(d.network))
	for _, set := range handlerSets {
		for name, h := range set(d) {
			if _, dup := hs[name]; dup {
				panic("daemon: handler registered twice: " + name)
			}
			hs[name] = h
		}
	}
	for name, h := range hs {
		hs[name] = withProgressEvents(h)
	}
	return hs
}

func (d *Daemon) coreHandlers(shutdown func()) map[string]rpc.Handler {
	return map[string]rpc.Handler{
		api.MethodStatus: func(ctx context.Context, c *rpc.Call) (any, error) { return d.status(), nil },
		api.MethodShutdown: func(ctx context.Context, c *rpc.Call) (any, error) {
			st := d.status()
			st.Interrupted = d.vms.Interrupted()
			time.AfterFunc(50*time.Millisecond, shutdown)
			return st, nil
		},
		api.MethodImageBuild: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.BuildImageParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			im, err := d.buildImage(ctx, p, c.Progress)
			return imageView(im), err
		},
		api.MethodImageList: func(ctx context.Context, c *rpc.Call) (any, error) {
			ims, err := d.store.ListImages(ctx)
			out := []api.Image{}
			for _, im := range ims {
				out = append(out, imageView(im))
			}
			return out, err
		},
		api.MethodKernelImport: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.ImportKernelParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			k, err := d.importKernel(ctx, p, c.Progress)
			return kernelView(k), err
		},
		api.MethodKernelList: func(ctx context.Context, c *rpc.Call) (any, error) {
			ks, err := d.store.ListKernels(ctx)
			out := []api.Kernel{}
			for _, k := range ks {
				out = append(out, kernelView(k))
			}
			return out, err
		},
	}
}

func imageView(im store.Image) api.Image {
	return api.Image{Name: im.Name, Path: im.Path, SizeBytes: im.SizeBytes, Source: im.Source, CreatedAt: im.CreatedAt}
}

func kernelView(k store.Kernel) api.Kernel {
	return api.Kernel{Name: k.Name, Release: k.Release, Dir: k.Dir, Source: k.Source, CreatedAt: k.CreatedAt}
}
