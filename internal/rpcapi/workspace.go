package rpcapi

import (
	"context"
	"io"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/vms"
	"github.com/banger-dev/banger/internal/workspaces"
)

// WorkspaceHandlers serves `vm workspace prepare|export`. The prepare
// call's request body is the import's archive; export upgrades to an
// exec stream (the VM service's, as for vm exec) whose stdout is the
// patch.
func WorkspaceHandlers(s *workspaces.Service, vmsvc *vms.Service) Handlers {
	return Handlers{
		api.MethodWorkspacePrepare: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.WorkspacePrepareParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			return s.Prepare(ctx, p, LazyBody(c), Reporter(c))
		},
		api.MethodWorkspaceExport: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.WorkspaceExportParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			vm, req, err := s.Export(ctx, p)
			if err != nil {
				return nil, err
			}
			v, err := vmsvc.Resolve(ctx, vm.ID)
			if err != nil {
				return nil, err
			}
			sess, err := vmsvc.OpenExec(ctx, v, c.Method, req, func() {})
			if err != nil {
				return nil, err
			}
			return nil, Upgrade(c, sess)
		},
	}
}

// LazyBody is c's request body, taken on its first read: until then the
// call's disconnect watch goes on (a client that leaves while the call
// waits for a lock or a boot cancels its context).
func LazyBody(c *rpc.Call) io.Reader { return &lazyBody{c: c} }

type lazyBody struct {
	c *rpc.Call
	r io.Reader
}

func (b *lazyBody) Read(p []byte) (int, error) {
	if b.r == nil {
		b.r = b.c.Body()
	}
	return b.r.Read(p)
}
