package envd

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/banger-dev/banger/internal/agent/proto"
	ppb "github.com/banger-dev/banger/proto/process"
)

// The process registry. E2B's processes outlive the calls that start
// them (a background command, a terminal re-attached with Connect), so
// the daemon holds each one's agent exec stream here, by sandbox and
// pid, and fans its output out to every attached stream. The guest
// process lives as long as its exec stream: it ends with the sandbox,
// a kill, or the daemon (Server.Close).

// procTable is one sandbox's processes.
type procTable struct {
	mu      sync.Mutex
	procs   map[uint32]*process
	dropped bool   // removed from the server: add must use a new table
	drop    func() // removes the table from the server when empty
}

// process is one running guest process.
type process struct {
	pid    uint32
	tag    string
	config *ppb.ProcessConfig
	pty    bool
	stream net.Conn // the agent's exec stream

	wmu sync.Mutex // frames to the guest

	mu   sync.Mutex
	subs map[*subscriber]struct{}
	end  *ppb.ProcessEvent_EndEvent // set when the process ended
	done chan struct{}
}

// subscriber is one attached stream (Start, Connect).
type subscriber struct {
	events chan *ppb.ProcessEvent
	gone   chan struct{} // closed when the stream's call ended
}

// table returns a sandbox's processes; with create, a new empty table
// when it has none (else nil). An empty table is dropped when its last
// process ends (pump), so sandboxes that are gone leave nothing.
func (s *Server) table(sandbox string, create bool) (*procTable, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("the daemon is stopping")
	}
	t := s.procs[sandbox]
	if t == nil && create {
		t = &procTable{procs: map[uint32]*process{}}
		t.drop = func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			t.mu.Lock()
			defer t.mu.Unlock()
			if len(t.procs) == 0 && s.procs[sandbox] == t {
				delete(s.procs, sandbox)
				t.dropped = true
			}
		}
		s.procs[sandbox] = t
	}
	return t, nil
}

// readPID reads the FramePID frame an exec with ReportPID starts with.
func readPID(st net.Conn) (uint32, error) {
	typ, p, err := proto.ReadFrame(st)
	if err != nil {
		return 0, fmt.Errorf("read the process's pid: %w", err)
	}
	if typ != proto.FramePID || len(p) != 4 {
		return 0, fmt.Errorf("the guest agent sent frame %d instead of the process's pid: it is older than this daemon (restart the VM)", typ)
	}
	return binary.BigEndian.Uint32(p), nil
}

// add registers a started process with its first subscriber and starts
// relaying its output; false when the table was dropped meanwhile (the
// caller takes a new one).
func (t *procTable) add(p *process, first *subscriber) bool {
	p.subs = map[*subscriber]struct{}{first: {}}
	p.done = make(chan struct{})
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped {
		return false
	}
	t.procs[p.pid] = p
	go t.pump(p)
	return true
}

// pump relays the exec stream's frames to the subscribers until the exit
// frame (or the stream's end), then removes the process.
func (t *procTable) pump(p *process) {
	end := &ppb.ProcessEvent_EndEvent{ExitCode: -1, Status: "the sandbox's agent went away"}
	for {
		typ, b, err := proto.ReadFrame(p.stream)
		if err != nil {
			msg := "the process's stream ended: " + err.Error()
			end.Error = &msg
			break
		}
		if typ == proto.FrameExit {
			end = exitEvent(b)
			break
		}
		var data *ppb.ProcessEvent_DataEvent
		switch {
		case typ == proto.FrameStdout && p.pty:
			data = &ppb.ProcessEvent_DataEvent{Output: &ppb.ProcessEvent_DataEvent_Pty{Pty: b}}
		case typ == proto.FrameStdout:
			data = &ppb.ProcessEvent_DataEvent{Output: &ppb.ProcessEvent_DataEvent_Stdout{Stdout: b}}
		case typ == proto.FrameStderr:
			data = &ppb.ProcessEvent_DataEvent{Output: &ppb.ProcessEvent_DataEvent_Stderr{Stderr: b}}
		default:
			continue
		}
		p.publish(&ppb.ProcessEvent{Event: &ppb.ProcessEvent_Data{Data: data}})
	}
	p.stream.Close()
	t.mu.Lock()
	delete(t.procs, p.pid)
	t.mu.Unlock()
	t.drop()
	p.mu.Lock()
	p.end = end
	subs := p.subs
	p.subs = nil
	p.mu.Unlock()
	ev := &ppb.ProcessEvent{Event: &ppb.ProcessEvent_End{End: end}}
	for sub := range subs {
		select {
		case sub.events <- ev:
		case <-sub.gone:
		}
		close(sub.events)
	}
	close(p.done)
}

// publish hands ev to every subscriber, waiting for slow ones (output is
// never dropped; a stream whose call ended is skipped).
func (p *process) publish(ev *ppb.ProcessEvent) {
	p.mu.Lock()
	subs := make([]*subscriber, 0, len(p.subs))
	for sub := range p.subs {
		subs = append(subs, sub)
	}
	p.mu.Unlock()
	for _, sub := range subs {
		select {
		case sub.events <- ev:
		case <-sub.gone:
		}
	}
}

// subscribe attaches a stream; false when the process already ended.
func (p *process) subscribe() (*subscriber, bool) {
	sub := &subscriber{events: make(chan *ppb.ProcessEvent, 64), gone: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.subs == nil {
		return nil, false
	}
	p.subs[sub] = struct{}{}
	return sub, true
}

func (p *process) unsubscribe(sub *subscriber) {
	close(sub.gone)
	p.mu.Lock()
	delete(p.subs, sub)
	p.mu.Unlock()
}

// send writes one frame to the guest process.
func (p *process) send(typ byte, payload []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return proto.WriteFrame(p.stream, typ, payload)
}

func exitEvent(b []byte) *ppb.ProcessEvent_EndEvent {
	var st proto.ExitStatus
	if err := json.Unmarshal(b, &st); err != nil {
		msg := "bad exit status from the guest agent: " + err.Error()
		return &ppb.ProcessEvent_EndEvent{ExitCode: -1, Error: &msg}
	}
	end := &ppb.ProcessEvent_EndEvent{ExitCode: int32(st.Code), Exited: st.Signal == "" && st.Error == ""}
	switch {
	case st.Error != "":
		end.Status = "error"
		end.Error = &st.Error
	case st.Signal != "":
		end.Status = "signal: " + st.Signal
	default:
		end.Status = fmt.Sprintf("exit status %d", st.Code)
	}
	return end
}

// find returns the process a selector names.
func (t *procTable) find(sel *ppb.ProcessSelector) *process {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s := sel.GetSelector().(type) {
	case *ppb.ProcessSelector_Pid:
		return t.procs[s.Pid]
	case *ppb.ProcessSelector_Tag:
		for _, p := range t.procs {
			if p.tag != "" && p.tag == s.Tag {
				return p
			}
		}
	}
	return nil
}

func (t *procTable) list() []*ppb.ProcessInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*ppb.ProcessInfo
	for _, p := range t.procs {
		info := &ppb.ProcessInfo{Config: p.config, Pid: p.pid}
		if p.tag != "" {
			tag := p.tag
			info.Tag = &tag
		}
		out = append(out, info)
	}
	return out
}

func (t *procTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.procs {
		p.stream.Close()
	}
}
