// Package rpcapi is the unix-socket transport's adapter: each handler
// decodes one request of the JSON-lines protocol (internal/rpc), calls one
// typed service method and returns its result for rpc to encode. rpc.Server
// has already checked the caller (SO_PEERCRED: same uid) and writes
// progress events and errors; services never see an rpc type.
//
// A new transport (HTTP, a remote CLI) is a sibling of this package: it
// holds the same services and does its own decoding, auth and encoding.
// A new service method gets one line in the area's file here (vm.go,
// artifacts.go, workspace.go, network.go, daemon.go); a new service, a
// field in Services and a line in All.
package rpcapi

import (
	"context"

	"github.com/banger-dev/banger/internal/artifacts"
	"github.com/banger-dev/banger/internal/httpapi/apikeys"
	"github.com/banger-dev/banger/internal/network"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/vms"
	"github.com/banger-dev/banger/internal/workspaces"
)

// Services are the services the daemon composes; a transport serves
// their methods.
type Services struct {
	VMs        *vms.Service
	Artifacts  *artifacts.Service
	Workspaces *workspaces.Service
	Network    *network.Service
	APIKeys    *apikeys.Service // the HTTP API's keys
}

// Handlers maps method names (api.Method*) to handlers.
type Handlers map[string]rpc.Handler

// Add merges more into h; a method registered twice is a programming
// error.
func (h Handlers) Add(more Handlers) Handlers {
	for name, fn := range more {
		if _, dup := h[name]; dup {
			panic("rpcapi: handler registered twice: " + name)
		}
		h[name] = fn
	}
	return h
}

// Reporter is the progress reporter of one call: events go to the client
// as progress lines, never blocking the work.
func Reporter(c *rpc.Call) progress.Reporter { return progress.Func(c.Send) }

// Typed adapts a service method with params P and result R.
func Typed[P, R any](fn func(context.Context, P, progress.Reporter) (R, error)) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		var p P
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		r, err := fn(ctx, p, Reporter(c))
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// Quick adapts a method without progress.
func Quick[P, R any](fn func(context.Context, P) (R, error)) rpc.Handler {
	return Typed(func(ctx context.Context, p P, _ progress.Reporter) (R, error) { return fn(ctx, p) })
}
