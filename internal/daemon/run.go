package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/workspaces"
)

// handleRun creates a VM, runs one command through the guest agent and,
// with rm, deletes the VM before the exit status reaches the client — so
// when `vm run --rm` returns nothing is left. A client that goes away
// (Ctrl-C) ends the command and, with rm, the VM.
//
// The image's runtime config applies: its environment comes before the
// request's, its working directory is used when neither the request nor
// a workspace names one, and with no command its Entrypoint+Cmd runs. An
// image with no command is refused before any VM is reserved.
func (d *Daemon) handleRun(ctx context.Context, c *rpc.Call) (any, error) {
	var p api.RunParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	ws, err := workspaces.CheckSpec(p.Workspace)
	if err != nil {
		return nil, err
	}
	var rt store.ImageRuntime
	vm, err := d.createVMChecked(ctx, p.Create, func(im store.Image) error {
		rt = im.Runtime
		if len(p.Argv) == 0 {
			if p.Argv = defaultCommand(rt); len(p.Argv) == 0 {
				return invalid("image %s defines no command: give one after --, e.g. banger vm run -- make test (or banger vm run -t -- bash for a shell)", im.Name)
			}
		}
		return nil
	}, c.Progress)
	if err != nil {
		if p.Remove && vm.ID != "" {
			d.deleteVM(context.WithoutCancel(ctx), vm)
		}
		return nil, err
	}
	teardown := func() {
		if p.Remove {
			if err := d.deleteVM(context.Background(), vm); err != nil {
				d.log.Warn("vm run --rm teardown", "vm", vm.Name, "err", err)
			}
		}
	}
	if ctx.Err() != nil { // the client left during boot
		teardown()
		return nil, ctx.Err()
	}
	dir, err := d.workspaces.ImportForRun(ctx, workspaces.VM{ID: vm.ID, Name: vm.Name, State: vm.State}, ws, rpcapi.LazyBody(c), progress.Func(c.Send))
	if err != nil {
		teardown()
		return nil, err
	}
	if p.Dir == "" {
		p.Dir = dir
	}
	p.Env = runEnv(rt.Env, p.Env)
	imageDir := p.Dir == "" && ws == nil && rt.WorkingDir != ""
	if imageDir {
		p.Dir = rt.WorkingDir
	}
	return d.execForClient(ctx, c, vm, proto.ExecRequest{Argv: p.Argv, Env: p.Env, Dir: p.Dir, MakeDir: imageDir,
		TTY: ttyOf(p.TTY), User: cmp.Or(p.User, rt.User)}, teardown)
}

// execForClient starts req in a running VM and hands the client the exec
// stream (upgrading the call), relayed in the background. ended runs once:
// when the stream could not be opened, or when the command has ended,
// before its exit status reaches the client.
func (d *Daemon) execForClient(ctx context.Context, c *rpc.Call, vm store.VM, req proto.ExecRequest, ended func()) (any, error) {
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	stream, err := d.openExec(octx, vm, req)
	cancel()
	if err != nil {
		ended()
		return nil, err
	}
	conn, br, err := c.Upgrade(d.view(vm))
	if err != nil {
		stream.Close()
		ended()
		return nil, err
	}
	r := &relay{what: describeExec(c.Method, vm.Name, req.Argv, c.PeerPID()), client: conn, stop: make(chan struct{}),
		interrupt: func() {
			// Unblock the relay's read at once, then close: the agent
			// kills the command when its stream closes.
			if dl, ok := stream.(interface{ SetReadDeadline(time.Time) error }); ok {
				dl.SetReadDeadline(time.Now())
			}
			stream.Close()
		}}
	d.bgWG.Add(1)
	d.relays.add(r)
	go func() {
		defer d.bgWG.Done()
		defer d.relays.remove(r)
		defer conn.Close()
		relayExec(br, conn, stream, ended, r)
	}()
	return nil, rpc.ErrUpgraded
}

func init() {
	handlerSets = append(handlerSets, func(d *Daemon) map[string]rpc.Handler {
		return map[string]rpc.Handler{api.MethodVMExec: d.handleExec}
	})
}

// handleExec runs a command in a running VM through its agent — the way
// into a VM whose image has no sshd — with the image's runtime config
// applied as for vm.run. No VM lock is held while the command streams, so
// vm stop and vm delete are never blocked by it (they end it).
func (d *Daemon) handleExec(ctx context.Context, c *rpc.Call) (any, error) {
	var p api.ExecParams
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	if len(p.Argv) == 0 {
		return nil, invalid("no command given: banger vm exec NAME -- CMD [ARGS...]")
	}
	vm, err := d.resolveName(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	if d.instance(vm.ID) == nil {
		return nil, notRunning(vm)
	}
	var rt store.ImageRuntime
	if im, err := d.store.GetImage(ctx, vm.Image); err == nil {
		rt = im.Runtime
	}
	imageDir := p.Dir == "" && rt.WorkingDir != ""
	if imageDir {
		p.Dir = rt.WorkingDir
	}
	return d.execForClient(ctx, c, vm, proto.ExecRequest{Argv: p.Argv, Env: runEnv(rt.Env, p.Env), Dir: p.Dir, MakeDir: imageDir,
		TTY: ttyOf(p.TTY), User: cmp.Or(p.User, rt.User)}, func() {})
}

// ttyOf carries a client's terminal size to the agent.
func ttyOf(ws *api.WinSize) *proto.WinSize {
	if ws == nil {
		return nil
	}
	return &proto.WinSize{Rows: ws.Rows, Cols: ws.Cols}
}

// defaultCommand is what an image runs when `vm run` is given no command:
// its Entrypoint followed by its Cmd, as `docker run IMAGE` does.
func defaultCommand(rt store.ImageRuntime) []string {
	return append(append([]string(nil), rt.Entrypoint...), rt.Cmd...)
}

// runEnv is the image's environment followed by the request's; a request
// variable replaces the image's of the same name.
func runEnv(image, req []string) []string {
	mine := map[string]bool{}
	for _, kv := range req {
		k, _, _ := strings.Cut(kv, "=")
		mine[k] = true
	}
	var env []string
	for _, kv := range image {
		if k, _, _ := strings.Cut(kv, "="); !mine[k] {
			env = append(env, kv)
		}
	}
	return append(env, req...)
}

func (d *Daemon) openExec(ctx context.Context, vm store.VM, req proto.ExecRequest) (io.ReadWriteCloser, error) {
	in := d.instance(vm.ID)
	if in == nil {
		return nil, errNotRunning
	}
	ac, err := in.agentClient(ctx)
	if err != nil {
		return nil, err
	}
	return ac.OpenExec(ctx, req)
}

// relayExec copies client frames to the guest and guest frames to the
// client, holding back the exit frame until beforeExit has run. When r is
// interrupted (daemon stop) the client gets an exit frame saying so.
func relayExec(client io.Reader, clientW net.Conn, guest io.ReadWriteCloser, beforeExit func(), r *relay) {
	defer guest.Close()
	go func() {
		io.Copy(guest, client)
		guest.Close() // client gone: the agent kills the process
	}()
	// A client that stopped reading must not hold up the stop: it gets
	// two seconds to take what is in flight and the exit frame.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-r.stop:
			clientW.SetWriteDeadline(time.Now().Add(2 * time.Second))
		case <-done:
		}
	}()
	for {
		typ, payload, err := proto.ReadFrame(guest)
		if r.interrupted() {
			beforeExit()
			b, _ := json.Marshal(proto.ExitStatus{Code: interruptedExit, Error: errDaemonStopped})
			proto.WriteFrame(clientW, proto.FrameExit, b)
			return
		}
		if err != nil {
			beforeExit()
			if !errors.Is(err, io.EOF) {
				proto.WriteFrame(clientW, proto.FrameExit, []byte(`{"code":255,"error":"guest stream ended: `+jsonSafe(err.Error())+`"}`))
			}
			return
		}
		if typ == proto.FrameExit {
			beforeExit()
		}
		if err := proto.WriteFrame(clientW, typ, payload); err != nil {
			continue // client gone; keep draining until exit
		}
		if typ == proto.FrameExit {
			return
		}
	}
}

func jsonSafe(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '"' || r == '\\' || r < 0x20 {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
