package mcpserver

import (
	"context"
	"io"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
)

// Client adapts the daemon's typed client to Daemon.
func Client(c *client.Client) Daemon { return clientDaemon{c} }

type clientDaemon struct{ *client.Client }

func (c clientDaemon) VMExec(ctx context.Context, p api.ExecParams) (io.ReadWriteCloser, error) {
	s, _, err := c.Client.VMExec(ctx, p, nil)
	return stream(s, err)
}

func (c clientDaemon) VMCopyIn(ctx context.Context, p api.CopyInParams) (io.ReadWriteCloser, error) {
	return stream(c.Client.VMCopyIn(ctx, p))
}

func (c clientDaemon) VMCopyOut(ctx context.Context, p api.CopyOutParams) (io.ReadWriteCloser, error) {
	return stream(c.Client.VMCopyOut(ctx, p))
}

func (c clientDaemon) WorkspaceExport(ctx context.Context, p api.WorkspaceExportParams) (io.ReadWriteCloser, error) {
	return stream(c.Client.WorkspaceExport(ctx, p))
}

// stream keeps a nil *client.Stream from becoming a non-nil interface.
func stream(s *client.Stream, err error) (io.ReadWriteCloser, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
