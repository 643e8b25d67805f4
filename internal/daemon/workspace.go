package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/workspace"
)

func init() {
	handlerSets = append(handlerSets, func(d *Daemon) map[string]rpc.Handler {
		return map[string]rpc.Handler{
			api.MethodWorkspacePrepare: d.handleWorkspacePrepare,
			api.MethodWorkspaceExport:  d.handleWorkspaceExport,
		}
	})
}

// guestFS maps a guest path to where the agent writes it. Daemon tests
// run the agent on the host (the fake VMM) and point it at a temporary
// directory; in production it is the identity.
var guestFS = func(p string) string { return p }

// archiveStarting runs as an import starts streaming; tests use it to
// act while a copy is in flight.
var archiveStarting = func() {}

// wsLocks serialises imports into one VM, by VM id. It is separate from
// the VM's lifecycle lock, which an import never holds: vm stop or
// delete proceeds while a copy streams, and ends it.
var wsLocks sync.Map

func wsLock(id string) *sync.Mutex {
	l, _ := wsLocks.LoadOrStore(id, &sync.Mutex{})
	return l.(*sync.Mutex)
}

// plannedImport is an import checked against the host before any VM is
// touched.
type plannedImport struct {
	guest string
	plan  *workspace.Plan
}

// planImport validates a workspace request: bad input fails here, before
// a VM is created or anything is sent.
func planImport(ctx context.Context, s api.WorkspaceSpec) (*plannedImport, error) {
	guest, err := workspace.GuestPath(s.GuestPath)
	if err != nil {
		return nil, invalid("%v", err)
	}
	plan, err := workspace.Make(ctx, workspace.Options{Repo: s.Repo, From: s.From, Branch: s.Branch,
		IncludeUntracked: s.IncludeUntracked, Submodules: s.Submodules})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, invalid("%v", err)
	}
	return &plannedImport{guest: guest, plan: plan}, nil
}

func (d *Daemon) handleWorkspacePrepare(ctx context.Context, c *rpc.Call) (any, error) {
	var p api.WorkspacePrepareParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	vm, err := d.lookup(ctx, c)
	if err != nil {
		return nil, err
	}
	if d.instance(vm.ID) == nil {
		return nil, notRunning(vm)
	}
	pi, err := planImport(ctx, p.WorkspaceSpec)
	if err != nil {
		return nil, err
	}
	return d.runImport(ctx, vm, pi, c.Progress)
}

func notRunning(vm store.VM) error {
	return conflict("vm %s is %s: start it with `banger vm start %s`", vm.Name, vm.State, vm.Name)
}

// runImport streams a planned import into a running VM. The copy is
// all or nothing: the agent builds it beside the target and renames it
// into place only once complete. Cancelling ctx (the client left) stops
// it.
func (d *Daemon) runImport(ctx context.Context, vm store.VM, pi *plannedImport, progress progressFn) (api.Workspace, error) {
	res := api.Workspace{VM: vm.Name, GuestPath: pi.guest, Commit: pi.plan.Top().Commit, Branch: pi.plan.Top().Branch}
	lock := wsLock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	in := d.instance(vm.ID)
	if in == nil {
		return res, notRunning(vm)
	}
	start := time.Now()
	progress("workspace", fmt.Sprintf("%s → %s", pi.plan.Summary(), pi.guest))
	ac, err := in.agentClient(ctx)
	if err != nil {
		return res, err
	}
	tmp, err := os.MkdirTemp(d.paths.CacheDir, "workspace-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	cr, err := ac.CopyIn(ctx, proto.CopyInParams{Dir: guestFS(pi.guest), Fresh: true, DirMode: 0o755},
		func(tw *client.TarWriter) error {
			archiveStarting()
			return pi.plan.Archive(ctx, tw, tmp)
		})
	if err != nil {
		var re *client.RequestError
		if errors.As(err, &re) && d.instance(vm.ID) != nil {
			return res, conflict("import into %s: %s", vm.Name, re.Message)
		}
		if d.instance(vm.ID) == nil {
			return res, fmt.Errorf("import into %s: the VM stopped during the copy", vm.Name)
		}
		return res, fmt.Errorf("import into %s: %w", vm.Name, err)
	}
	res.Files, res.Bytes, res.Seconds = len(pi.plan.Files()), cr.Bytes, time.Since(start).Seconds()
	d.log.Info("workspace imported", "vm", vm.Name, "path", pi.guest, "files", res.Files, "bytes", res.Bytes, "dur", time.Since(start))
	return res, nil
}

// handleWorkspaceExport runs the export script in the guest and relays
// its output to the client as an exec stream: the patch is data the CLI
// writes where it was told, nothing on the host interprets it.
func (d *Daemon) handleWorkspaceExport(ctx context.Context, c *rpc.Call) (any, error) {
	var p api.WorkspaceExportParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	vm, err := d.lookup(ctx, c)
	if err != nil {
		return nil, err
	}
	guest, err := workspace.GuestPath(p.GuestPath)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if d.instance(vm.ID) == nil {
		return nil, notRunning(vm)
	}
	return d.execForClient(ctx, c, vm, workspace.ExportRequest(guestFS(guest), p.Base, p.NameOnly), func() {})
}

// planRunImport checks a vm run's repository before the VM is created.
func planRunImport(ctx context.Context, s *api.WorkspaceSpec) (*plannedImport, error) {
	if s == nil {
		return nil, nil
	}
	return planImport(ctx, *s)
}

// importForRun imports a vm run's repository (if any) into the new VM
// and makes it the command's working directory unless one was given.
func (d *Daemon) importForRun(ctx context.Context, vm store.VM, pi *plannedImport, p *api.RunParams, progress progressFn) error {
	if pi == nil {
		return nil
	}
	if _, err := d.runImport(ctx, vm, pi, progress); err != nil {
		return err
	}
	if p.Dir == "" {
		p.Dir = guestFS(pi.guest)
	}
	return nil
}
