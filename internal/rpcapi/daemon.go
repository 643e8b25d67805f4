package rpcapi

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
)

// Daemon is the daemon itself as `banger daemon status|stop` see it.
type Daemon interface {
	Status() api.Status
	// Shutdown starts the daemon's stop and returns its status, with the
	// exec streams the stop interrupts.
	Shutdown() api.Status
}

// DaemonHandlers serves daemon.status and daemon.shutdown.
func DaemonHandlers(d Daemon) Handlers {
	return Handlers{
		api.MethodStatus: Quick(func(context.Context, struct{}) (api.Status, error) { return d.Status(), nil }),
		api.MethodShutdown: Quick(func(context.Context, struct{}) (api.Status, error) {
			return d.Shutdown(), nil
		}),
	}
}

// All is every method of banger's services over the unix socket.
func All(d Daemon, s Services) Handlers {
	return Handlers{}.
		Add(DaemonHandlers(d)).
		Add(VMHandlers(s.VMs)).
		Add(ForkHandlers(s.VMs)).
		Add(NetPolicyHandlers(s.VMs)).
		Add(ArtifactsHandlers(s.Artifacts)).
		Add(WorkspaceHandlers(s.Workspaces, s.VMs)).
		Add(NetworkHandlers(s.Network)).
		Add(RemoteHandlers(s.VMs)).
		Add(APIKeyHandlers(s.APIKeys))
}
