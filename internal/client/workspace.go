package client

import (
	"context"
	"io"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

// WorkspacePrepare imports a repository into a running VM
// (vm.workspace.prepare). archive is the import's archive as
// workspace.Plan.Send writes it; it is sent as the call's request body
// while progress is read, and the daemon never opens the repository.
// Cancelling ctx closes the connection: the guest keeps nothing.
func (c *Client) WorkspacePrepare(ctx context.Context, p api.WorkspacePrepareParams, archive io.Reader, onProgress func(api.Progress)) (api.Workspace, error) {
	var ws api.Workspace
	conn, err := rpc.Start(ctx, c.dial, api.MethodWorkspacePrepare, p)
	if err != nil {
		return ws, err
	}
	defer conn.Close()
	conn.SendBody(archive)
	return ws, conn.Wait(ctx, onProgress, &ws)
}

// WorkspaceExport opens a workspace export (vm.workspace.export): an
// exec stream whose stdout is the patch (or the changed paths).
func (c *Client) WorkspaceExport(ctx context.Context, p api.WorkspaceExportParams) (*Stream, error) {
	return c.Stream(ctx, api.MethodWorkspaceExport, p, nil, nil)
}

// VMRunWorkspace is VMRun with a repository (p.Workspace set): archive,
// as for WorkspacePrepare, is sent as the request body; the daemon
// imports it once the VM is up, then the connection carries the exec
// stream.
func (c *Client) VMRunWorkspace(ctx context.Context, p api.RunParams, archive io.Reader, onProgress func(api.Progress)) (*Stream, api.VM, error) {
	var vm api.VM
	conn, err := rpc.Start(ctx, c.dial, api.MethodVMRun, p)
	if err != nil {
		return nil, vm, err
	}
	conn.SendBody(archive)
	if err := conn.Wait(ctx, onProgress, &vm); err != nil {
		conn.Close()
		return nil, vm, err
	}
	return &Stream{conn}, vm, nil
}
