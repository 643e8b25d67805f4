package rpcapi

import (
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/vms"
)

// NetPolicyHandlers serves `vm set --net/--allow-out/--deny-out`.
func NetPolicyHandlers(s *vms.Service) Handlers {
	return Handlers{api.MethodVMSetNet: Typed(s.SetNetPolicy)}
}
