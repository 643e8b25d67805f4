package envd

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/banger-dev/banger/internal/agent/proto"
	ppb "github.com/banger-dev/banger/proto/process"
)

// processService is process.Process over the agent's exec streams and
// the daemon's process registry (procs.go).
type processService struct{ s *Server }

func (ps processService) Start(ctx context.Context, req *connect.Request[ppb.StartRequest], stream *connect.ServerStream[ppb.StartResponse]) error {
	g := guestOf(ctx)
	cfg := req.Msg.GetProcess()
	if cfg.GetCmd() == "" {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("process.cmd is empty: name the program to run"))
	}
	er := proto.ExecRequest{
		Argv: append([]string{cfg.GetCmd()}, cfg.GetArgs()...), Env: append([]string(nil), g.Env...),
		Dir: cfg.GetCwd(), User: user(req.Header(), g), ReportPID: true,
	}
	keys := make([]string, 0, len(cfg.GetEnvs()))
	for k := range cfg.GetEnvs() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		er.Env = append(er.Env, k+"="+cfg.GetEnvs()[k])
	}
	if pty := req.Msg.GetPty(); pty != nil {
		er.TTY = &proto.WinSize{Rows: uint16(pty.GetSize().GetRows()), Cols: uint16(pty.GetSize().GetCols())}
	}
	// Only the start is bound to the call: the process outlives it.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	st, err := g.Agent.OpenExec(octx, er)
	cancel()
	if err != nil {
		return connectErr(err)
	}
	pid, err := readPID(st)
	if err != nil {
		st.Close()
		return connect.NewError(connect.CodeInternal, err)
	}
	p := &process{pid: pid, tag: req.Msg.GetTag(), config: cfg, pty: er.TTY != nil, stream: st}
	if req.Msg.Stdin != nil && !req.Msg.GetStdin() && er.TTY == nil {
		if err := p.send(proto.FrameStdinEOF, nil); err != nil {
			st.Close()
			return connectErr(err)
		}
	}
	sub := &subscriber{events: make(chan *ppb.ProcessEvent, 64), gone: make(chan struct{})}
	for {
		t, err := ps.s.table(g.ID, true)
		if err != nil {
			st.Close()
			return connect.NewError(connect.CodeUnavailable, err)
		}
		if t.add(p, sub) {
			break
		}
	}
	return follow(ctx, p, sub, func(ev *ppb.ProcessEvent) error {
		return stream.Send(&ppb.StartResponse{Event: ev})
	})
}

func (ps processService) Connect(ctx context.Context, req *connect.Request[ppb.ConnectRequest], stream *connect.ServerStream[ppb.ConnectResponse]) error {
	p, err := ps.find(ctx, req.Msg.GetProcess())
	if err != nil {
		return err
	}
	sub, ok := p.subscribe()
	if !ok {
		return notFound(req.Msg.GetProcess())
	}
	return follow(ctx, p, sub, func(ev *ppb.ProcessEvent) error {
		return stream.Send(&ppb.ConnectResponse{Event: ev})
	})
}

// follow sends the start event, then the process's events to one
// stream until the process ends or the call does (the process goes on).
func follow(ctx context.Context, p *process, sub *subscriber, send func(*ppb.ProcessEvent) error) error {
	defer p.unsubscribe(sub)
	if err := send(&ppb.ProcessEvent{Event: &ppb.ProcessEvent_Start{Start: &ppb.ProcessEvent_StartEvent{Pid: p.pid}}}); err != nil {
		return err
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-sub.events:
			if !ok {
				return nil
			}
			if err := send(ev); err != nil {
				return err
			}
		case <-tick.C:
			if err := send(&ppb.ProcessEvent{Event: &ppb.ProcessEvent_Keepalive{Keepalive: &ppb.ProcessEvent_KeepAlive{}}}); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (ps processService) find(ctx context.Context, sel *ppb.ProcessSelector) (*process, error) {
	if sel.GetSelector() == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("no process selector: give a pid or a tag"))
	}
	t, err := ps.s.table(guestOf(ctx).ID, false)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	if t != nil {
		if p := t.find(sel); p != nil {
			return p, nil
		}
	}
	return nil, notFound(sel)
}

func notFound(sel *ppb.ProcessSelector) error {
	if tag, ok := sel.GetSelector().(*ppb.ProcessSelector_Tag); ok {
		return connect.NewError(connect.CodeNotFound, errors.New("process with tag "+tag.Tag+" not found"))
	}
	return connect.NewError(connect.CodeNotFound, errors.New("process with pid "+itoa(sel.GetPid())+" not found"))
}

func (ps processService) List(ctx context.Context, req *connect.Request[ppb.ListRequest]) (*connect.Response[ppb.ListResponse], error) {
	t, err := ps.s.table(guestOf(ctx).ID, false)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	var procs []*ppb.ProcessInfo
	if t != nil {
		procs = t.list()
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].Pid < procs[j].Pid })
	return connect.NewResponse(&ppb.ListResponse{Processes: procs}), nil
}

func (ps processService) Update(ctx context.Context, req *connect.Request[ppb.UpdateRequest]) (*connect.Response[ppb.UpdateResponse], error) {
	p, err := ps.find(ctx, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if size := req.Msg.GetPty().GetSize(); size != nil {
		if !p.pty {
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("process "+itoa(p.pid)+" has no terminal to resize"))
		}
		f := proto.ResizeFrame(proto.WinSize{Rows: uint16(size.GetRows()), Cols: uint16(size.GetCols())})
		if err := p.send(f.Type, f.Payload); err != nil {
			return nil, connectErr(err)
		}
	}
	return connect.NewResponse(&ppb.UpdateResponse{}), nil
}

func (ps processService) SendInput(ctx context.Context, req *connect.Request[ppb.SendInputRequest]) (*connect.Response[ppb.SendInputResponse], error) {
	p, err := ps.find(ctx, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if err := p.input(req.Msg.GetInput()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&ppb.SendInputResponse{}), nil
}

// input writes stdin or terminal input, in frames of at most MaxFrame.
func (p *process) input(in *ppb.ProcessInput) error {
	b := in.GetStdin()
	if in.GetPty() != nil {
		b = in.GetPty()
	}
	for len(b) > 0 {
		n := min(len(b), proto.MaxFrame)
		if err := p.send(proto.FrameStdin, b[:n]); err != nil {
			return connectErr(err)
		}
		b = b[n:]
	}
	return nil
}

func (ps processService) StreamInput(ctx context.Context, stream *connect.ClientStream[ppb.StreamInputRequest]) (*connect.Response[ppb.StreamInputResponse], error) {
	var p *process
	for stream.Receive() {
		switch ev := stream.Msg().GetEvent().(type) {
		case *ppb.StreamInputRequest_Start:
			var err error
			if p, err = ps.find(ctx, ev.Start.GetProcess()); err != nil {
				return nil, err
			}
		case *ppb.StreamInputRequest_Data:
			if p == nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("input before the start event naming the process"))
			}
			if err := p.input(ev.Data.GetInput()); err != nil {
				return nil, err
			}
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(&ppb.StreamInputResponse{}), nil
}

func (ps processService) SendSignal(ctx context.Context, req *connect.Request[ppb.SendSignalRequest]) (*connect.Response[ppb.SendSignalResponse], error) {
	p, err := ps.find(ctx, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	sig := req.Msg.GetSignal()
	if sig != ppb.Signal_SIGNAL_SIGKILL && sig != ppb.Signal_SIGNAL_SIGTERM {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("signal "+sig.String()+" is not supported: SIGTERM or SIGKILL"))
	}
	f := proto.SignalFrame(byte(sig))
	if err := p.send(f.Type, f.Payload); err != nil {
		return nil, connectErr(err)
	}
	return connect.NewResponse(&ppb.SendSignalResponse{}), nil
}

func (ps processService) CloseStdin(ctx context.Context, req *connect.Request[ppb.CloseStdinRequest]) (*connect.Response[ppb.CloseStdinResponse], error) {
	p, err := ps.find(ctx, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if p.pty {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("a terminal has no end of input: send Ctrl-D (0x04) instead"))
	}
	if err := p.send(proto.FrameStdinEOF, nil); err != nil {
		return nil, connectErr(err)
	}
	return connect.NewResponse(&ppb.CloseStdinResponse{}), nil
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
