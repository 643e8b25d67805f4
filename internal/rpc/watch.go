package rpc

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// watch cancels a call when its client goes away. The client sends
// nothing after its request line (and after its request body, when it
// sends one), so a read on the connection that returns an error while
// the watch runs means the client closed it. It is stopped while the
// handler itself reads (a request body) and before the connection is
// handed to a streaming handler, and started again once the body ended.
type watch struct {
	conn     net.Conn
	br       *bufio.Reader
	cancel   func()
	stopping atomic.Bool

	mu   sync.Mutex    // start and stop may come from a handler's own goroutine
	done chan struct{} // nil while not running
}

func (w *watch) start() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return
	}
	done := make(chan struct{})
	w.done = done
	go func() {
		defer close(done)
		// Bytes arriving (a body, or a stream after an upgrade) end the
		// watch without cancelling; an error is the client leaving,
		// unless stop caused it.
		if _, err := w.br.Peek(1); err != nil && !w.stopping.Load() {
			w.cancel()
		}
	}()
}

// stop ends a running watch and waits for it, leaving the connection
// readable with no deadline.
func (w *watch) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		return
	}
	w.stopping.Store(true)
	w.conn.SetReadDeadline(time.Now())
	<-w.done
	w.conn.SetReadDeadline(time.Time{})
	w.stopping.Store(false)
	w.done = nil
}
