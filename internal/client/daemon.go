package client

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
)

// Shutdown asks the daemon to exit (daemon.shutdown); the result lists
// the exec streams that ends.
func (c *Client) Shutdown(ctx context.Context) (api.Status, error) {
	return call[api.Status](ctx, c, api.MethodShutdown, nil, nil)
}

// NetworkShow lists every host network object banger created
// (network.show).
func (c *Client) NetworkShow(ctx context.Context) (api.NetworkState, error) {
	return call[api.NetworkState](ctx, c, api.MethodNetworkShow, nil, nil)
}

// NetworkTeardown removes everything banger added to the host's network
// (network.teardown).
func (c *Client) NetworkTeardown(ctx context.Context) (api.NetworkTeardown, error) {
	return call[api.NetworkTeardown](ctx, c, api.MethodNetworkTeardown, nil, nil)
}
