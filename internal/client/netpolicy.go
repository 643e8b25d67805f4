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

// VMForward adds forwards to a VM (vm.forward).
func (c *Client) VMForward(ctx context.Context, p api.ForwardParams, onProgress func(api.Progress)) ([]api.Forward, error) {
	return call[[]api.Forward](ctx, c, api.MethodVMForward, p, onProgress)
}

// VMForwardList lists a VM's forwards (vm.forward_ls).
func (c *Client) VMForwardList(ctx context.Context, name string) ([]api.Forward, error) {
	return call[[]api.Forward](ctx, c, api.MethodVMForwardList, api.NameParams{Name: name}, nil)
}

// VMForwardRemove removes a VM's forward of a host port (vm.forward_rm).
func (c *Client) VMForwardRemove(ctx context.Context, p api.ForwardRemoveParams) ([]api.Forward, error) {
	return call[[]api.Forward](ctx, c, api.MethodVMForwardRemove, p, nil)
}

// VMAutoForward turns a VM's auto-forward on or off (vm.auto_forward).
func (c *Client) VMAutoForward(ctx context.Context, p api.AutoForwardParams) ([]api.Forward, error) {
	return call[[]api.Forward](ctx, c, api.MethodVMAutoForward, p, nil)
}
