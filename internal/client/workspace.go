package client

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
)

// WorkspacePrepare imports a repository into a running VM
// (vm.workspace.prepare).
func (c *Client) WorkspacePrepare(ctx context.Context, p api.WorkspacePrepareParams, onProgress func(api.Progress)) (api.Workspace, error) {
	return call[api.Workspace](ctx, c, api.MethodWorkspacePrepare, p, onProgress)
}

// WorkspaceExport opens a workspace export (vm.workspace.export): an
// exec stream whose stdout is the patch (or the changed paths).
func (c *Client) WorkspaceExport(ctx context.Context, p api.WorkspaceExportParams) (*Stream, error) {
	return c.Stream(ctx, api.MethodWorkspaceExport, p, nil, nil)
}
