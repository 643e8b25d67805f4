package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/banger-dev/banger/internal/envd"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/vms"
)

// envdSandboxes is the VM service as E2B's in-sandbox API finds its
// sandboxes: a sandbox id is a VM's name or id.
type envdSandboxes struct{ s *rpcapi.Services }

func (e envdSandboxes) Sandbox(ctx context.Context, id string) (envd.Guest, error) {
	g, err := e.s.VMs.RunningGuest(ctx, id)
	switch {
	case errors.Is(err, vms.ErrNoSuchVM):
		return envd.Guest{}, envd.ErrNotFound
	case errors.Is(err, vms.ErrVMNotActive):
		return envd.Guest{}, fmt.Errorf("%w (%v)", envd.ErrNotRunning, err)
	case err != nil:
		return envd.Guest{}, err
	}
	return envd.Guest{ID: g.VM.ID, Agent: g.Agent, User: g.Runtime.User, Env: g.Runtime.Env}, nil
}
