package rpcapi

import (
	"context"
	"io"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/vms"
)

// VMHandlers are the vm.* methods of the VM service (workspace methods
// live in workspace.go).
func VMHandlers(s *vms.Service) Handlers {
	byName := func(fn func(context.Context, string) (api.VM, error)) rpc.Handler {
		return Quick(func(ctx context.Context, p api.NameParams) (api.VM, error) { return fn(ctx, p.Name) })
	}
	byNameP := func(fn func(context.Context, string, progress.Reporter) (api.VM, error)) rpc.Handler {
		return Typed(func(ctx context.Context, p api.NameParams, r progress.Reporter) (api.VM, error) {
			return fn(ctx, p.Name, r)
		})
	}
	h := Handlers{
		api.MethodVMCreate: Typed(s.Create),
		api.MethodVMList:   Quick(func(ctx context.Context, _ struct{}) ([]api.VM, error) { return s.List(ctx) }),
		api.MethodVMShow:   byName(s.Show),
		api.MethodVMStart:  Typed(s.StartWith),
		api.MethodVMStop: Typed(func(ctx context.Context, p api.StopParams, r progress.Reporter) (api.VM, error) {
			if p.Save {
				return s.StopSave(ctx, p.Name, r)
			}
			return s.Stop(ctx, p.Name)
		}),
		api.MethodVMDelete:  byName(s.Delete),
		api.MethodVMRestart: byNameP(s.Restart),
		api.MethodVMSet:     Typed(s.Set),
		api.MethodVMSSH:     Typed(s.SSH),
		api.MethodVMStats: Quick(func(ctx context.Context, p api.NameParams) (api.VMStats, error) {
			return s.Stats(ctx, p.Name)
		}),
		api.MethodVMPorts: Quick(func(ctx context.Context, p api.NameParams) ([]api.Port, error) {
			return s.Ports(ctx, p.Name)
		}),
		api.MethodVMExec:    Stream(quickSession(s.Exec)),
		api.MethodVMCopyIn:  Stream(quickSession(s.CopyIn)),
		api.MethodVMCopyOut: Stream(quickSession(s.CopyOut)),
		api.MethodVMLogs:    Stream(quickSession(s.Logs)),
	}
	for m, fn := range SnapshotHandlers(s) {
		h[m] = fn
	}
	// vm run with a repository: the call's request body is the
	// workspace archive, read once the VM is up.
	h[api.MethodVMRun] = func(ctx context.Context, c *rpc.Call) (any, error) {
		var p api.RunParams
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		var archive io.Reader
		if p.Workspace != nil {
			archive = LazyBody(c)
		}
		sess, err := s.Run(ctx, p, archive, Reporter(c))
		if err != nil {
			return nil, err
		}
		return nil, Upgrade(c, sess)
	}
	return h
}

// Stream adapts a service method that opens a byte stream: the call's
// result is the session's, then the call is upgraded and its raw
// connection handed to the session.
func Stream[P any](fn func(context.Context, P, progress.Reporter) (*vms.Session, error)) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		var p P
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		sess, err := fn(ctx, p, Reporter(c))
		if err != nil {
			return nil, err
		}
		return nil, Upgrade(c, sess)
	}
}

// Upgrade hands an opened session the call's connection: it sends the
// session's result, switches to raw bytes and starts the relay. It
// returns rpc.ErrUpgraded, or the upgrade's error (the session is then
// released).
func Upgrade(c *rpc.Call, sess *vms.Session) error {
	conn, br, err := c.Upgrade(sess.Result())
	if err != nil {
		sess.Abort()
		return err
	}
	sess.Relay(vms.Client{Conn: conn, R: br, PeerPID: c.PeerPID()})
	return rpc.ErrUpgraded
}

func quickSession[P any](fn func(context.Context, P) (*vms.Session, error)) func(context.Context, P, progress.Reporter) (*vms.Session, error) {
	return func(ctx context.Context, p P, _ progress.Reporter) (*vms.Session, error) { return fn(ctx, p) }
}
