package daemon

import (
	"context"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
)

// handlerSets are handler groups defined in their own files (networking,
// workspaces, images), each registered from an init function.
var handlerSets []func(d *Daemon) map[string]rpc.Handler

func (d *Daemon) handlers(shutdown func()) map[string]rpc.Handler {
	hs := d.coreHandlers(shutdown)
	rpcapi.Handlers(hs).Add(rpcapi.NetworkHandlers(d.network))
	for _, set := range handlerSets {
		for name, h := range set(d) {
			if _, dup := hs[name]; dup {
				panic("daemon: handler registered twice: " + name)
			}
			hs[name] = h
		}
	}
	return hs
}

func (d *Daemon) coreHandlers(shutdown func()) map[string]rpc.Handler {
	return map[string]rpc.Handler{
		api.MethodStatus: func(ctx context.Context, c *rpc.Call) (any, error) { return d.status(), nil },
		api.MethodShutdown: func(ctx context.Context, c *rpc.Call) (any, error) {
			st := d.status()
			st.Interrupted = d.vms.Interrupted()
			time.AfterFunc(50*time.Millisecond, shutdown)
			return st, nil
		},
	}
}
