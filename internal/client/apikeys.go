package client

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
)

// The HTTP API's keys (issue 15).

// APIKeyCreate makes a key; the result carries it, shown this once
// (api.key.create).
func (c *Client) APIKeyCreate(ctx context.Context, name string) (api.APIKeyCreated, error) {
	return call[api.APIKeyCreated](ctx, c, api.MethodAPIKeyCreate, api.APIKeyParams{Name: name}, nil)
}

// APIKeyList lists the keys, without the keys themselves (api.key.list).
func (c *Client) APIKeyList(ctx context.Context) ([]api.APIKey, error) {
	return call[[]api.APIKey](ctx, c, api.MethodAPIKeyList, struct{}{}, nil)
}

// APIKeyDelete revokes a key (api.key.delete).
func (c *Client) APIKeyDelete(ctx context.Context, name string) (api.APIKey, error) {
	return call[api.APIKey](ctx, c, api.MethodAPIKeyDelete, api.APIKeyParams{Name: name}, nil)
}
