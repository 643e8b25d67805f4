package rpcapi

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/httpapi/apikeys"
)

// APIKeyHandlers are the api.key.* methods: the HTTP API's keys are
// managed over the unix socket, like every CLI operation.
func APIKeyHandlers(k *apikeys.Service) Handlers {
	return Handlers{
		api.MethodAPIKeyCreate: Quick(k.Create),
		api.MethodAPIKeyList:   Quick(func(ctx context.Context, _ struct{}) ([]api.APIKey, error) { return k.List(ctx) }),
		api.MethodAPIKeyDelete: Quick(k.Delete),
	}
}
