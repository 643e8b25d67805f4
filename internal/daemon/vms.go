package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vms"
	"github.com/banger-dev/banger/internal/workspaces"
)

// The VM service's wiring, and the shims the daemon's other files (images,
// workspaces, network) use until they become services of their own.

// stopBound is how long Run waits, after the RPC server has ended
// (rpc.DefaultGrace), for relays and background work to wind down
// before it returns anyway.
const stopBound = 5 * time.Second

func init() {
	handlerSets = append(handlerSets, func(d *Daemon) map[string]rpc.Handler { return rpcapi.VMHandlers(d.vms) })
	// The poller samples every running VM at stats_poll_interval.
	services = append(services, func(ctx context.Context, d *Daemon) (func(), error) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.vms.PollStats(ctx)
		}()
		return func() {
			cancel()
			<-done
		}, nil
	})
}

func (d *Daemon) wireVMs(o Options, drivers vms.Drivers) {
	d.vms = vms.New(vms.Deps{
		Paths: d.paths, Config: d.cfg, Host: config.ProbeHost(), Log: d.log, Store: d.store, Net: d.net,
		Drivers: drivers, Keys: d.keys, SSHReady: o.SSHReady, SSHProbe: o.SSHProbe,
		Artifacts: d.artifacts, Importer: importerForVMs{d},
		OnChange: d.notifyVMChanged,
		GuestFS:  func(p string) string { return guestFS(p) },
	})
	d.reserveMu = reserveShim{vms: d.vms}
}

// importerForVMs adapts the workspace service to vms.Importer.
type importerForVMs struct{ d *Daemon }

func (i importerForVMs) PrepareRun(ctx context.Context, p *api.RunParams, archive io.Reader) (vms.ImportFunc, error) {
	spec, err := workspaces.CheckSpec(p.Workspace)
	if err != nil || spec == nil {
		return nil, err
	}
	return func(ctx context.Context, vm store.VM, p *api.RunParams, r progress.Reporter) error {
		dir, err := i.d.workspaces.ImportForRun(ctx, workspaces.VM{ID: vm.ID, Name: vm.Name, State: vm.State}, spec, archive, r)
		if err == nil && p.Dir == "" {
			p.Dir = dir
		}
		return err
	}, nil
}

// reserveShim is the vms service's reservation lock (network teardown).
type reserveShim struct {
	vms    *vms.Service
	unlock func()
}

func (r *reserveShim) Lock()   { r.unlock = r.vms.LockReservations() }
func (r *reserveShim) Unlock() { r.unlock() }

// vmLock is a VM's lifecycle lock (image promote).
func (d *Daemon) vmLock(id string) *vmLockShim { return &vmLockShim{vms: d.vms, id: id} }

type vmLockShim struct {
	vms    *vms.Service
	id     string
	unlock func()
}

func (l *vmLockShim) Lock()   { l.unlock = l.vms.LockVM(l.id) }
func (l *vmLockShim) Unlock() { l.unlock() }

// runningVM is a running VM as the workspace code reaches its agent.
type runningVM struct {
	vms *vms.Service
	id  string
}

// instance is non-nil when the VM with id runs.
func (d *Daemon) instance(id string) *runningVM {
	if !d.vms.IsRunning(id) {
		return nil
	}
	return &runningVM{vms: d.vms, id: id}
}

func (in *runningVM) agentClient(ctx context.Context) (*client.Client, error) {
	return in.vms.AgentClient(ctx, in.id)
}

// lookup resolves the NameParams of a call.
func (d *Daemon) lookup(ctx context.Context, c *rpc.Call) (store.VM, error) {
	var p api.NameParams
	if err := c.Decode(&p); err != nil {
		return store.VM{}, err
	}
	return d.vms.Resolve(ctx, p.Name)
}

// execForClient opens req in vm and hands the call's connection to the
// exec stream (workspace export).
func (d *Daemon) execForClient(ctx context.Context, c *rpc.Call, vm store.VM, req proto.ExecRequest, ended func()) (any, error) {
	sess, err := d.vms.OpenExec(ctx, vm, c.Method, req, ended)
	if err != nil {
		return nil, err
	}
	return nil, rpcapi.Upgrade(c, sess)
}

func invalid(format string, a ...any) error {
	return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf(format, a...)}
}

func conflict(format string, a ...any) error {
	return &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf(format, a...)}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var didYouMean = vms.DidYouMean

// dnsLabel is what image, kernel and VM names must be.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// dir is a VM's file layout.
func (d *Daemon) dir(id string) vmdir.Dir { return vmdir.For(d.paths, id) }

// defaultCommand is what an image runs when `vm run` is given no command.
var defaultCommand = vms.DefaultCommand
