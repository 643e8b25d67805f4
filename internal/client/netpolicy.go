package client

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
)

// VMSetNet changes a VM's network policy (vm.set_net); on a running VM it
// applies to new connections at once.
func (c *Client) VMSetNet(ctx context.Context, p api.SetNetParams, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMSetNet, p, onProgress)
}
