package vms

import (
	"cmp"
	"context"
	"io"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// Run creates a VM, imports its workspace (Importer) and opens one
// command in it through the guest agent. With Remove the VM is deleted
// before the exit status reaches the client — so when `vm run --rm`
// returns nothing is left — and a client that goes away (Ctrl-C) ends
// the command and, with Remove, the VM.
//
// The image's runtime config applies: its environment comes before the
// request's, its working directory is used when neither the request nor
// a workspace names one, and with no command its Entrypoint+Cmd runs. An
// image with no command is refused before any VM is reserved.
func (s *Service) Run(ctx context.Context, p api.RunParams, archive io.Reader, r progress.Reporter) (*Session, error) {
	r = progress.Or(r)
	var imp ImportFunc
	if p.Workspace != nil {
		if s.Importer == nil {
			return nil, api.Invalidf("this bangerd cannot import a workspace")
		}
		var err error
		if imp, err = s.Importer.PrepareRun(ctx, &p, archive); err != nil {
			return nil, err
		}
	}
	var rt store.ImageRuntime
	vm, err := s.create(ctx, p.Create, func(im store.Image) error {
		rt = im.Runtime
		if len(p.Argv) == 0 {
			if p.Argv = DefaultCommand(rt); len(p.Argv) == 0 {
				return api.Invalidf("image %s defines no command: give one after --, e.g. banger vm run -- make test (or banger vm run -t -- bash for a shell)", im.Name)
			}
		}
		return nil
	}, r)
	if err != nil {
		if p.Remove && vm.ID != "" {
			s.deleteVM(context.WithoutCancel(ctx), vm)
		}
		return nil, err
	}
	teardown := func() {
		if p.Remove {
			if err := s.deleteVM(context.Background(), vm); err != nil {
				s.Log.Warn("vm run --rm teardown", "vm", vm.Name, "err", err)
			}
		}
	}
	if ctx.Err() != nil { // the client left during boot
		teardown()
		return nil, ctx.Err()
	}
	if imp != nil {
		if err := imp(ctx, vm, &p, r); err != nil {
			teardown()
			return nil, err
		}
	}
	p.Env = runEnv(rt.Env, p.Env)
	imageDir := p.Dir == "" && imp == nil && rt.WorkingDir != ""
	if imageDir {
		p.Dir = rt.WorkingDir
	}
	req := p.ExecRequest
	req.MakeDir, req.User = imageDir, cmp.Or(p.User, rt.User)
	return s.OpenExec(ctx, vm, api.MethodVMRun, req, teardown)
}

// Exec opens a command in a running VM through its agent — the way into
// a VM whose image has no sshd — with the image's runtime config applied
// as for Run. No VM lock is held while the command streams, so vm stop
// and vm delete are never blocked by it (they end it).
func (s *Service) Exec(ctx context.Context, p api.ExecParams) (*Session, error) {
	if len(p.Argv) == 0 {
		return nil, api.Invalidf("no command given: banger vm exec NAME -- CMD [ARGS...]")
	}
	vm, err := s.Resolve(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	if s.instance(vm.ID) == nil {
		return nil, NotRunning(vm)
	}
	if vm.State == store.StatePaused {
		return nil, isPaused(vm)
	}
	var rt store.ImageRuntime
	if im, err := s.Store.GetImage(ctx, vm.Image); err == nil {
		rt = im.Runtime
	}
	imageDir := p.Dir == "" && rt.WorkingDir != ""
	if imageDir {
		p.Dir = rt.WorkingDir
	}
	req := p.ExecRequest
	req.Env, req.MakeDir, req.User = runEnv(rt.Env, p.Env), imageDir, cmp.Or(p.User, rt.User)
	return s.OpenExec(ctx, vm, api.MethodVMExec, req, func() {})
}

// OpenExec starts req in a running VM and returns its exec stream as a
// session; method names it in `daemon stop`'s list. ended runs once:
// when the stream could not be opened or handed over, or when the
// command has ended, before its exit status reaches the client.
func (s *Service) OpenExec(ctx context.Context, vm store.VM, method string, req proto.ExecRequest, ended func()) (*Session, error) {
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	stream, err := s.openExec(octx, vm, req)
	cancel()
	if err != nil {
		ended()
		return nil, err
	}
	return &Session{
		result: s.View(vm),
		abort: func() {
			stream.Close()
			ended()
		},
		run: func(c Client) {
			r := &relay{what: describeExec(method, vm.Name, req.Argv, c.PeerPID), stop: make(chan struct{}),
				interrupt: func() {
					// Unblock the relay's read at once, then close: the
					// agent kills the command when its stream closes.
					if dl, ok := stream.(interface{ SetReadDeadline(time.Time) error }); ok {
						dl.SetReadDeadline(time.Now())
					}
					stream.Close()
				}}
			s.bgWG.Add(1)
			s.relays.add(r)
			go func() {
				defer s.bgWG.Done()
				defer s.relays.remove(r)
				defer c.Conn.Close()
				relayExec(c.R, c.Conn, stream, ended, r)
			}()
		},
	}, nil
}

// DefaultCommand is what an image runs when `vm run` is given no command:
// its Entrypoint followed by its Cmd, as `docker run IMAGE` does.
func DefaultCommand(rt store.ImageRuntime) []string {
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

func (s *Service) openExec(ctx context.Context, vm store.VM, req proto.ExecRequest) (io.ReadWriteCloser, error) {
	in := s.instance(vm.ID)
	if in == nil {
		return nil, errNotRunning
	}
	ac, err := in.agentClient(ctx)
	if err != nil {
		return nil, err
	}
	return ac.OpenExec(ctx, req)
}
