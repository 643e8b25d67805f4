package envd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/banger-dev/banger/internal/agent/proto"
	fspb "github.com/banger-dev/banger/proto/filesystem"
)

// filesystemService is filesystem.Filesystem over the agent's fs and
// watch ops.
type filesystemService struct{ s *Server }

func fsParams[T any](ctx context.Context, req *connect.Request[T], action, path string) (Guest, proto.FSParams) {
	g := guestOf(ctx)
	return g, proto.FSParams{Action: action, Path: path, User: user(req.Header(), g)}
}

func (f filesystemService) Stat(ctx context.Context, req *connect.Request[fspb.StatRequest]) (*connect.Response[fspb.StatResponse], error) {
	g, p := fsParams(ctx, req, proto.FSStat, req.Msg.GetPath())
	e, err := g.fsEntry(ctx, p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&fspb.StatResponse{Entry: e}), nil
}

func (f filesystemService) MakeDir(ctx context.Context, req *connect.Request[fspb.MakeDirRequest]) (*connect.Response[fspb.MakeDirResponse], error) {
	g, p := fsParams(ctx, req, proto.FSMkdir, req.Msg.GetPath())
	e, err := g.fsEntry(ctx, p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&fspb.MakeDirResponse{Entry: e}), nil
}

func (f filesystemService) Move(ctx context.Context, req *connect.Request[fspb.MoveRequest]) (*connect.Response[fspb.MoveResponse], error) {
	g, p := fsParams(ctx, req, proto.FSMove, req.Msg.GetSource())
	p.Dest = req.Msg.GetDestination()
	e, err := g.fsEntry(ctx, p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&fspb.MoveResponse{Entry: e}), nil
}

func (f filesystemService) ListDir(ctx context.Context, req *connect.Request[fspb.ListDirRequest]) (*connect.Response[fspb.ListDirResponse], error) {
	g, p := fsParams(ctx, req, proto.FSList, req.Msg.GetPath())
	p.Depth = int(min(req.Msg.GetDepth(), 64))
	res, err := g.fs(ctx, p)
	if err != nil {
		return nil, connectErr(err)
	}
	out := &fspb.ListDirResponse{}
	for _, e := range res.Entries {
		out.Entries = append(out.Entries, entryPB(e))
	}
	return connect.NewResponse(out), nil
}

func (f filesystemService) Remove(ctx context.Context, req *connect.Request[fspb.RemoveRequest]) (*connect.Response[fspb.RemoveResponse], error) {
	g, p := fsParams(ctx, req, proto.FSRemove, req.Msg.GetPath())
	if _, err := g.fs(ctx, p); err != nil {
		return nil, connectErr(err)
	}
	return connect.NewResponse(&fspb.RemoveResponse{}), nil
}

// keepAlive is how often an idle stream gets a keepalive event, as envd
// sends them, so proxies and clients do not time it out.
var keepAlive = 30 * time.Second

func (f filesystemService) WatchDir(ctx context.Context, req *connect.Request[fspb.WatchDirRequest], stream *connect.ServerStream[fspb.WatchDirResponse]) error {
	g := guestOf(ctx)
	st, err := openWatch(ctx, g, req.Msg.GetPath(), req.Msg.GetRecursive(), user(req.Header(), g))
	if err != nil {
		return err
	}
	defer st.Close()
	context.AfterFunc(ctx, func() { st.Close() })
	if err := stream.Send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Start{Start: &fspb.WatchDirResponse_StartEvent{}}}); err != nil {
		return err
	}
	events := make(chan proto.WatchEvent)
	go readWatch(st, events)
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return connect.NewError(connect.CodeUnavailable, errors.New("the guest ended the watch (the sandbox stopped, or the directory was removed)"))
			}
			if err := stream.Send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Filesystem{Filesystem: eventPB(ev)}}); err != nil {
				return err
			}
		case <-tick.C:
			if err := stream.Send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Keepalive{Keepalive: &fspb.WatchDirResponse_KeepAlive{}}}); err != nil {
				return err
			}
		}
	}
}

func openWatch(ctx context.Context, g Guest, path string, recursive bool, user string) (net.Conn, error) {
	st, _, err := g.Agent.Open(ctx, proto.OpWatch, proto.WatchParams{Path: path, Recursive: recursive, User: user})
	if err != nil {
		return nil, connectErr(watchErr(err))
	}
	return st, nil
}

// watchErr gives a refused watch the code E2B's envd uses: a missing
// directory is not found.
func watchErr(err error) error {
	if msg := err.Error(); strings.Contains(msg, "no such file or directory") {
		return &fsErr{Code: proto.FSNotFound, Message: msg}
	} else if strings.Contains(msg, "not a directory") {
		return &fsErr{Code: proto.FSInvalid, Message: msg}
	}
	return err
}

// readWatch sends the stream's events to out and closes it when the
// stream ends.
func readWatch(st net.Conn, out chan<- proto.WatchEvent) {
	defer close(out)
	br := bufio.NewReader(st)
	for {
		var ev proto.WatchEvent
		if err := proto.ReadLine(br, &ev); err != nil {
			return
		}
		out <- ev
	}
}

func eventPB(ev proto.WatchEvent) *fspb.FilesystemEvent {
	t := map[string]fspb.EventType{
		proto.WatchCreate: fspb.EventType_EVENT_TYPE_CREATE, proto.WatchWrite: fspb.EventType_EVENT_TYPE_WRITE,
		proto.WatchRemove: fspb.EventType_EVENT_TYPE_REMOVE, proto.WatchRename: fspb.EventType_EVENT_TYPE_RENAME,
		proto.WatchChmod: fspb.EventType_EVENT_TYPE_CHMOD,
	}[ev.Type]
	return &fspb.FilesystemEvent{Name: ev.Name, Type: t}
}

// maxWatcherEvents bounds what a polled watcher keeps between two
// GetWatcherEvents; older events are dropped beyond it.
const maxWatcherEvents = 10000

// watcher is a polled watch (CreateWatcher): its events wait in memory
// for GetWatcherEvents.
type watcher struct {
	sandbox string
	st      net.Conn
	mu      sync.Mutex
	events  []proto.WatchEvent
	ended   bool
}

func (w *watcher) close() { w.st.Close() }

func (f filesystemService) CreateWatcher(ctx context.Context, req *connect.Request[fspb.CreateWatcherRequest]) (*connect.Response[fspb.CreateWatcherResponse], error) {
	g := guestOf(ctx)
	// The watch outlives this call: only its start is bound to ctx.
	st, err := openWatch(context.WithoutCancel(ctx), g, req.Msg.GetPath(), req.Msg.GetRecursive(), user(req.Header(), g))
	if err != nil {
		return nil, err
	}
	b := make([]byte, 12)
	rand.Read(b)
	id := hex.EncodeToString(b)
	w := &watcher{sandbox: g.ID, st: st}
	f.s.mu.Lock()
	if f.s.closed {
		f.s.mu.Unlock()
		st.Close()
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("the daemon is stopping"))
	}
	f.s.watchers[id] = w
	f.s.mu.Unlock()
	go func() {
		events := make(chan proto.WatchEvent)
		go readWatch(st, events)
		for ev := range events {
			w.mu.Lock()
			if len(w.events) >= maxWatcherEvents {
				w.events = w.events[1:]
			}
			w.events = append(w.events, ev)
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.ended = true
		w.mu.Unlock()
	}()
	return connect.NewResponse(&fspb.CreateWatcherResponse{WatcherId: id}), nil
}

func (f filesystemService) watcher(ctx context.Context, id string) (*watcher, error) {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	w, ok := f.s.watchers[id]
	if !ok || w.sandbox != guestOf(ctx).ID {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("watcher "+id+" not found"))
	}
	return w, nil
}

func (f filesystemService) GetWatcherEvents(ctx context.Context, req *connect.Request[fspb.GetWatcherEventsRequest]) (*connect.Response[fspb.GetWatcherEventsResponse], error) {
	w, err := f.watcher(ctx, req.Msg.GetWatcherId())
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	events, ended := w.events, w.ended
	w.events = nil
	w.mu.Unlock()
	out := &fspb.GetWatcherEventsResponse{}
	for _, ev := range events {
		out.Events = append(out.Events, eventPB(ev))
	}
	if ended && len(events) == 0 {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("watcher "+req.Msg.GetWatcherId()+" ended: the sandbox stopped or the directory was removed"))
	}
	return connect.NewResponse(out), nil
}

func (f filesystemService) RemoveWatcher(ctx context.Context, req *connect.Request[fspb.RemoveWatcherRequest]) (*connect.Response[fspb.RemoveWatcherResponse], error) {
	w, err := f.watcher(ctx, req.Msg.GetWatcherId())
	if err != nil {
		return nil, err
	}
	f.s.mu.Lock()
	delete(f.s.watchers, req.Msg.GetWatcherId())
	f.s.mu.Unlock()
	w.close()
	return connect.NewResponse(&fspb.RemoveWatcherResponse{}), nil
}
