package rpc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

// Progress never blocks a handler (which may hold a VM lock): events go
// to a per-call queue of at most maxQueuedProgress lines that one writer
// goroutine drains; when the client reads too slowly the oldest queued
// events are dropped. The final result (or error) is always written after
// the queued progress, and a client gets resultTimeout to take it before
// the connection is closed.
const (
	maxQueuedProgress = 64
	resultTimeout     = 30 * time.Second
)

// Call is one request being served.
type Call struct {
	Method  string
	params  json.RawMessage
	conn    net.Conn
	br      *bufio.Reader
	start   time.Time
	peerPID int

	wmu sync.Mutex // one message (or body chunk) on the wire at a time

	mu       sync.Mutex
	done     bool      // no more progress
	finished bool      // the final line is written or being written
	queue    []message // progress waiting for the writer
	wake     chan struct{}
	written  chan struct{} // closed when the writer has exited
	// watch cancels the call when the client goes away; it pauses
	// while the handler reads the request body and ends before the
	// connection is handed to a streaming handler.
	watch *watch
}

func newCall(conn net.Conn, br *bufio.Reader, pid int) *Call {
	c := &Call{conn: conn, br: br, start: time.Now(), peerPID: pid, wake: make(chan struct{}, 1), written: make(chan struct{})}
	go c.writeLoop()
	return c
}

// PeerPID is the client's process ID (from the socket's peer
// credentials), 0 when unknown.
func (c *Call) PeerPID() int { return c.peerPID }

// Decode unmarshals the params into v, strictly.
func (c *Call) Decode(v any) error {
	if len(c.params) == 0 || string(c.params) == "null" {
		return nil
	}
	if err := json.Unmarshal(c.params, v); err != nil {
		return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("bad params for %s: %v", c.Method, err)}
	}
	return nil
}

// Progress queues one stage for the client and returns at once; the
// client may have gone away or stopped reading, and the work must go on.
func (c *Call) Progress(stage, msg string) {
	c.Send(api.Progress{Stage: stage, Message: msg})
}

// Send queues one progress event as given (with counts, for instance);
// Elapsed is filled in. Like Progress, it never blocks.
func (c *Call) Send(p api.Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if len(c.queue) >= maxQueuedProgress {
		c.queue = append(c.queue[:0], c.queue[1:]...)
	}
	p.Elapsed = time.Since(c.start).Seconds()
	c.queue = append(c.queue, message{Progress: &p})
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes queued progress until the call is done and the queue
// empty, or a write fails (the client is gone: later events are dropped).
func (c *Call) writeLoop() {
	defer close(c.written)
	for {
		c.mu.Lock()
		batch, done := c.queue, c.done
		c.queue = nil
		c.mu.Unlock()
		for _, m := range batch {
			if err := c.write(m); err != nil {
				c.mu.Lock()
				c.done, c.queue = true, nil
				c.mu.Unlock()
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		if done {
			return
		}
		<-c.wake
	}
}

// finish ends progress and writes m after what is queued, giving the
// client timeout to read it all. It reports false when the call was
// already finished.
func (c *Call) finish(m message, timeout time.Duration) (bool, error) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return false, nil
	}
	c.done, c.finished = true, true
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.mu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(timeout))
	<-c.written
	err := c.write(m)
	c.conn.SetWriteDeadline(time.Time{})
	return true, err
}

func (c *Call) write(m message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(m)
}

func (c *Call) writeLocked(m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = c.conn.Write(append(b, '\n'))
	return err
}

// Upgrade sends result and hands the raw connection to the handler for a
// streaming protocol. The returned reader holds any bytes the client sent
// after its request line. The handler must return (nil, ErrUpgraded).
func (c *Call) Upgrade(result any) (net.Conn, *bufio.Reader, error) {
	b, err := json.Marshal(result)
	if err != nil {
		return nil, nil, err
	}
	c.watch.stop()
	c.watch = nil
	if _, err := c.finish(message{Result: b}, resultTimeout); err != nil {
		return nil, nil, err
	}
	return c.conn, c.br, nil
}
