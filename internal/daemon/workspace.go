package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

// wsLocks serialises imports into one VM, by VM id. It is separate from
// the VM's lifecycle lock, which an import never holds: vm stop or
// delete proceeds while a copy streams, and ends it.
var wsLocks sync.Map

func wsLock(id string) *sync.Mutex {
	l, _ := wsLocks.LoadOrStore(id, &sync.Mutex{})
	return l.(*sync.Mutex)
}

// importSpec checks what a client says about its import: the guest path
// is the only part the daemon acts on.
func importSpec(s api.WorkspaceSpec) (api.WorkspaceSpec, error) {
	guest, err := workspace.GuestPath(s.GuestPath)
	if err != nil {
		return s, invalid("%v", err)
	}
	s.GuestPath = guest
	return s, nil
}

func (d *Daemon) handleWorkspacePrepare(ctx context.Context, c *rpc.Call) (any, error) {
	var p api.WorkspacePrepareParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	vm, err := d.resolveName(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	if d.instance(vm.ID) == nil {
		return nil, notRunning(vm)
	}
	spec, err := importSpec(p.WorkspaceSpec)
	if err != nil {
		return nil, err
	}
	return d.runImport(ctx, vm, spec, &lazyBody{c: c}, c.Progress)
}

// lazyBody is a call's request body, taken on first read: until then
// the call's disconnect watch goes on.
type lazyBody struct {
	c *rpc.Call
	r io.Reader
}

func (b *lazyBody) Read(p []byte) (int, error) {
	if b.r == nil {
		b.r = b.c.Body()
	}
	return b.r.Read(p)
}

func notRunning(vm store.VM) error {
	return conflict("vm %s is %s: start it with `banger vm start %s`", vm.Name, vm.State, vm.Name)
}

// runImport relays a client's archive (body: the tar stream and the
// agent's trailer, see api.WorkspaceSpec) into a fresh copy_in at the
// guest path of a running VM; the daemon never opens the repository.
// The copy is all or nothing: the agent builds it beside the target and
// renames it into place only once the trailer has arrived. A body that
// fails (the client left) or ends early leaves nothing in the guest.
func (d *Daemon) runImport(ctx context.Context, vm store.VM, spec api.WorkspaceSpec, body io.Reader, progress progressFn) (api.Workspace, error) {
	res := api.Workspace{VM: vm.Name, GuestPath: spec.GuestPath, Commit: spec.Commit, Branch: spec.Branch}
	lock := wsLock(vm.ID)
	lock.Lock()
	defer lock.Unlock()
	in := d.instance(vm.ID)
	if in == nil {
		return res, notRunning(vm)
	}
	start := time.Now()
	progress("workspace", fmt.Sprintf("%s → %s", spec.Summary, spec.GuestPath))
	ac, err := in.agentClient(ctx)
	if err != nil {
		return res, err
	}
	st, _, err := ac.Open(ctx, proto.OpCopyIn, proto.CopyInParams{Dir: guestFS(spec.GuestPath), Fresh: true, DirMode: 0o755})
	if err != nil {
		return res, d.importError(vm, err, "")
	}
	cr, err := relayArchive(ctx, st, body)
	if err != nil {
		select {
		case <-ac.Done(): // the agent's session ended: the VM is stopping
			return res, fmt.Errorf("import into %s: the VM stopped during the copy", vm.Name)
		default:
		}
		return res, d.importError(vm, err, " (the guest keeps nothing of the archive)")
	}
	res.Files, res.Bytes, res.Seconds = spec.Files, cr.Bytes, time.Since(start).Seconds()
	d.log.Info("workspace imported", "vm", vm.Name, "path", spec.GuestPath, "files", res.Files, "bytes", res.Bytes, "dur", time.Since(start))
	return res, nil
}

// bodyError is a failure to read the client's archive.
type bodyError struct{ err error }

func (e bodyError) Error() string { return "the client stopped sending the archive: " + e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

// relayArchive copies body into the agent stream st and returns the
// agent's result. The agent may answer before the body has ended (it
// refused an entry): its answer ends the relay. When the body fails, the
// agent sees the archive end without its trailer and drops the copy; its
// answer is awaited (briefly) so that nothing is left on return.
func relayArchive(ctx context.Context, st net.Conn, body io.Reader) (proto.CopyResult, error) {
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var cr proto.CopyResult
	resc := make(chan error, 1)
	go func() { resc <- proto.ReadLine(st, &cr) }()
	copyc := make(chan error, 1)
	go func() {
		_, err := io.Copy(st, readErrs{body})
		st.Close() // yamux: a half-close, the agent still answers
		copyc <- err
	}()
	answer := func(rerr error) (proto.CopyResult, error) {
		if rerr == nil && cr.Error != "" {
			return cr, &client.RequestError{Op: proto.OpCopyIn, Message: cr.Error}
		}
		return cr, rerr
	}
	select {
	case cerr := <-copyc:
		if cerr == nil {
			return answer(<-resc)
		}
		select {
		case rerr := <-resc:
			if _, err := answer(rerr); errors.As(err, new(*client.RequestError)) && !errors.As(cerr, new(bodyError)) {
				return cr, err // the agent's refusal explains the broken write
			}
		case <-time.After(10 * time.Second):
		}
		return cr, cerr
	case rerr := <-resc:
		cr, err := answer(rerr)
		if err != nil {
			return cr, err
		}
		// The trailer has arrived; the body's end follows it.
		return cr, <-copyc
	}
}

// readErrs marks the body's read errors as bodyErrors.
type readErrs struct{ r io.Reader }

func (r readErrs) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = bodyError{err}
	}
	return n, err
}

// importError words an import's failure for the client; note ends it.
func (d *Daemon) importError(vm store.VM, err error, note string) error {
	var re *client.RequestError
	switch {
	case d.instance(vm.ID) == nil:
		return fmt.Errorf("import into %s: the VM stopped during the copy", vm.Name)
	case errors.As(err, &re) && !errors.As(err, new(bodyError)):
		return conflict("import into %s: %s%s", vm.Name, re.Message, note)
	default:
		return fmt.Errorf("import into %s: %w%s", vm.Name, err, note)
	}
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

// planRunImport checks a vm run's workspace before the VM is created.
func planRunImport(s *api.WorkspaceSpec) (*api.WorkspaceSpec, error) {
	if s == nil {
		return nil, nil
	}
	spec, err := importSpec(*s)
	return &spec, err
}

// importForRun imports a vm run's repository (if any), sent as the
// call's request body, into the new VM and makes it the command's
// working directory unless one was given.
func (d *Daemon) importForRun(ctx context.Context, vm store.VM, spec *api.WorkspaceSpec, body io.Reader, p *api.RunParams, progress progressFn) error {
	if spec == nil {
		return nil
	}
	if _, err := d.runImport(ctx, vm, *spec, body, progress); err != nil {
		return err
	}
	if p.Dir == "" {
		p.Dir = guestFS(spec.GuestPath)
	}
	return nil
}
