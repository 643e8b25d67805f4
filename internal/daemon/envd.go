package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/banger-dev/banger/internal/envd"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vms"
)

// envdSandboxes is the VM service as E2B's in-sandbox API finds its
// sandboxes: a sandbox id is a VM's name or id. The environment is the
// image's, then the envVars the sandbox was created with (its record).
type envdSandboxes struct {
	s  *rpcapi.Services
	st *store.Store
}

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
	env := append([]string(nil), g.Runtime.Env...)
	rec, err := e.st.GetSandbox(ctx, g.VM.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return envd.Guest{}, err
	}
	keys := make([]string, 0, len(rec.EnvVars))
	for k := range rec.EnvVars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+rec.EnvVars[k])
	}
	return envd.Guest{ID: g.VM.ID, Agent: g.Agent, User: g.Runtime.User, Env: env}, nil
}
