package client

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
)

// VMFork makes running copies of a VM (vm.fork).
func (c *Client) VMFork(ctx context.Context, p api.ForkParams, onProgress func(api.Progress)) (api.ForkResult, error) {
	return call[api.ForkResult](ctx, c, api.MethodVMFork, p, onProgress)
}
