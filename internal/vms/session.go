package vms

import (
	"io"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

// Session is a call that becomes a byte stream: an exec (vm run, vm exec,
// workspace export), a copy (vm cp) or a console log (vm logs). The
// service has opened its far end (the agent stream, the log file) before
// returning it, so a refusal is the call's error. The transport then
// sends Result to the client as the call's answer, switches the
// connection to raw bytes and hands it over with Relay — or calls Abort
// when it could not. The unix-socket adapter upgrades its rpc call; an
// HTTP adapter would hijack its connection the same way.
type Session struct {
	result api.VM
	run    func(Client)
	abort  func()
	once   sync.Once
}

// Client is a transport's raw connection to its client.
type Client struct {
	// Conn is the connection: the session writes to it and closes it.
	Conn io.ReadWriteCloser
	// R reads what the client sends; a transport that has buffered part
	// of the stream passes its reader, else Conn.
	R io.Reader
	// PeerPID is the client's pid where the transport knows it (0 if not),
	// for `daemon stop`'s list of interrupted commands.
	PeerPID int
}

// Result is the call's answer, sent before the stream starts: the VM.
func (x *Session) Result() api.VM { return x.result }

// Relay starts the stream over c in the background and returns; the
// service tracks it (Interrupt ends exec streams, Wait waits for them).
func (x *Session) Relay(c Client) {
	if c.R == nil {
		c.R = c.Conn
	}
	x.once.Do(func() { x.run(c) })
}

// Abort releases the far end when the transport cannot hand over a
// connection (the client left).
func (x *Session) Abort() { x.once.Do(x.abort) }

// Interrupt ends every exec relay now, and those started later: the
// guest command is killed and its client gets an exit frame saying the
// daemon stopped.
func (s *Service) Interrupt() {
	s.relays.interruptAll()
	s.cancelCapture() // warmboot.go: a template capture is not worth waiting for
}

// Interrupted describes the exec relays running now, for `daemon stop`.
func (s *Service) Interrupted() []string { return s.relays.describe() }

// Wait waits up to bound for relays and background work (vm run
// teardown, --no-wait creates) to end; false when time ran out.
func (s *Service) Wait(bound time.Duration) bool {
	done := make(chan struct{})
	go func() {
		s.bgWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(bound):
		return false
	}
}

// Close ends the watchers (running VMs keep running: the next daemon
// re-attaches them) and log followers.
func (s *Service) Close() {
	close(s.stopping)
	s.watchWG.Wait()
}

// NewSessionForTest is a session with the given result, relay and abort,
// for transports' tests.
func NewSessionForTest(result api.VM, run func(Client), abort func()) *Session {
	return &Session{result: result, run: run, abort: abort}
}
