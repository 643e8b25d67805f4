package rpcapi

import (
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/vms"
)

// RemoteHandlers serve what a client on another machine needs beyond
// the other methods (vm.ssh_remote).
func RemoteHandlers(s *vms.Service) Handlers {
	return Handlers{api.MethodVMSSHRemote: Typed(s.SSHRemote)}
}
