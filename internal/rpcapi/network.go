package rpcapi

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/network"
)

// NetworkHandlers serves `banger network show|teardown`.
func NetworkHandlers(s *network.Service) Handlers {
	return Handlers{
		api.MethodNetworkShow: Quick(func(ctx context.Context, _ struct{}) (api.NetworkState, error) {
			return s.Show(ctx)
		}),
		api.MethodNetworkTeardown: Quick(func(ctx context.Context, _ struct{}) (api.NetworkTeardown, error) {
			return s.Teardown(ctx)
		}),
	}
}
