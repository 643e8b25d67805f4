package vms

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// Exec relays (vm run, vm exec, workspace export) outlive their call:
// the service tracks them so that `daemon stop` can say which it
// interrupts and end them at once, instead of waiting for commands that
// may never finish. An interrupted relay closes the guest stream (the
// agent kills the command) and sends the client an exit frame saying the
// daemon stopped.
const (
	// InterruptedExit is the exit code a client sees for a command the
	// daemon's stop interrupted (125: banger could not run it to the end).
	InterruptedExit = 125
)

// ErrDaemonStopped is the exit frame's error of an interrupted command.
const ErrDaemonStopped = "daemon stopped: the command was interrupted (banger daemon stop); run it again"

// relay is one exec stream being relayed.
type relay struct {
	what      string // e.g. "vm exec dev -- make test (client pid 4242)"
	stop      chan struct{}
	stopOnce  sync.Once
	interrupt func() // ends the guest side
}

type relaySet struct {
	mu     sync.Mutex
	all    map[*relay]struct{}
	closed bool
}

// add registers r; a relay started while the daemon stops is interrupted
// at once.
func (s *relaySet) add(r *relay) {
	s.mu.Lock()
	if s.all == nil {
		s.all = map[*relay]struct{}{}
	}
	s.all[r] = struct{}{}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		go r.end()
	}
}

func (s *relaySet) remove(r *relay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.all, r)
}

// describe lists the relays running now, sorted.
func (s *relaySet) describe() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for r := range s.all {
		out = append(out, r.what)
	}
	sort.Strings(out)
	return out
}

// interruptAll ends every relay, and those registered later.
func (s *relaySet) interruptAll() {
	s.mu.Lock()
	s.closed = true
	rs := make([]*relay, 0, len(s.all))
	for r := range s.all {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	for _, r := range rs {
		go r.end() // a close can wait on a guest that does not read
	}
}

func (r *relay) end() {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.interrupt()
	})
}

func (r *relay) interrupted() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// describeExec names an exec stream for people: the call, the VM, the
// command (shortened) and the client's pid.
func describeExec(method, vm string, argv []string, pid int) string {
	cmd := strings.Join(argv, " ")
	if len(cmd) > 60 {
		cut := 57
		for cut > 0 && !utf8.RuneStart(cmd[cut]) {
			cut-- // never half a character
		}
		cmd = cmd[:cut] + "..."
	}
	s := fmt.Sprintf("%s %s", strings.ReplaceAll(method, ".", " "), vm)
	if cmd != "" {
		s += " -- " + cmd
	}
	if pid > 0 {
		s += fmt.Sprintf(" (client pid %d)", pid)
	}
	return s
}

// relayExec copies client frames to the guest and guest frames to the
// client, holding back the exit frame until beforeExit has run. When r is
// interrupted (daemon stop) the client gets an exit frame saying so.
func relayExec(client io.Reader, clientW io.Writer, guest io.ReadWriteCloser, beforeExit func(), r *relay) {
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
			if dl, ok := clientW.(interface{ SetWriteDeadline(time.Time) error }); ok {
				dl.SetWriteDeadline(time.Now().Add(2 * time.Second))
			}
		case <-done:
		}
	}()
	for {
		typ, payload, err := proto.ReadFrame(guest)
		if r.interrupted() {
			beforeExit()
			b, _ := json.Marshal(proto.ExitStatus{Code: InterruptedExit, Error: ErrDaemonStopped})
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
