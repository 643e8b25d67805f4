package daemon

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Exec relays (vm run, vm exec, workspace export) outlive their RPC call:
// the daemon tracks them so that `daemon stop` can say which it
// interrupts and end them at once, instead of waiting for commands that
// may never finish. An interrupted relay closes the guest stream (the
// agent kills the command) and sends the client an exit frame saying the
// daemon stopped.
const (
	// stopBound is how long Run waits, after the RPC server has ended
	// (rpc.DefaultGrace), for relays and background work to wind down
	// before it returns anyway.
	stopBound = 5 * time.Second
	// interruptedExit is the exit code a client sees for a command the
	// daemon's stop interrupted (125: banger could not run it to the end).
	interruptedExit = 125
)

const errDaemonStopped = "daemon stopped: the command was interrupted (banger daemon stop); run it again"

// relay is one exec stream being relayed.
type relay struct {
	what      string // e.g. "vm exec dev -- make test (client pid 4242)"
	client    net.Conn
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

// waitBounded waits for wg up to d; false when time ran out.
func waitBounded(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
