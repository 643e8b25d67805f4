package rpcapi

import (
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/vms"
)

// ForkHandlers is vm.fork (issue 14).
func ForkHandlers(s *vms.Service) Handlers {
	return Handlers{api.MethodVMFork: Typed(s.Fork)}
}
