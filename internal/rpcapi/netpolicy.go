package rpcapi

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/vms"
)

// NetPolicyHandlers serves `vm set --net/--allow-out/--deny-out` and
// `vm forward`.
func NetPolicyHandlers(s *vms.Service) Handlers {
	return Handlers{
		api.MethodVMSetNet:        Typed(s.SetNetPolicy),
		api.MethodVMForward:       Typed(s.Forward),
		api.MethodVMForwardRemove: Typed(s.ForwardRemove),
		api.MethodVMAutoForward:   Typed(s.SetAutoForward),
		api.MethodVMForwardList: Quick(func(ctx context.Context, p api.NameParams) ([]api.Forward, error) {
			return s.ForwardList(ctx, p)
		}),
	}
}
