package client

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// freezable is the guest's end of the channel; while frozen it reads
// nothing (a guest whose vCPUs are stopped).
type freezable struct {
	io.Reader
	mu     sync.Mutex
	thawed chan struct{} // nil: running
}

func (f *freezable) freeze() {
	f.mu.Lock()
	f.thawed = make(chan struct{})
	f.mu.Unlock()
}

func (f *freezable) thaw() {
	f.mu.Lock()
	if f.thawed != nil {
		close(f.thawed)
		f.thawed = nil
	}
	f.mu.Unlock()
}

func (f *freezable) Read(p []byte) (int, error) {
	f.mu.Lock()
	ch := f.thawed
	f.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return f.Reader.Read(p)
}

func alive(c *Client) bool {
	select {
	case <-c.Done():
		return false
	default:
		return true
	}
}

// While paused, a guest that answers nothing keeps its session; a guest
// that answers nothing while not paused loses it to the keep-alive.
func TestKeepAliveSparesPausedGuestOnly(t *testing.T) {
	oldI, oldT := KeepAliveInterval, KeepAliveTimeout
	KeepAliveInterval, KeepAliveTimeout = 20*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { KeepAliveInterval, KeepAliveTimeout = oldI, oldT })
	host, guest := connPair(t)
	fz := &freezable{}
	gs := make(chan *yamux.Session, 1)
	go func() {
		r, err := guestHandshake(guest)
		if err != nil {
			gs <- nil
			return
		}
		fz.Reader = r
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		cfg.EnableKeepAlive = false
		s, _ := yamux.Server(rwc{fz, guest}, cfg)
		gs <- s
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g := <-gs
	if g == nil {
		t.Fatal("guest handshake failed")
	}
	defer g.Close()
	defer fz.thaw() // first: the guest's session cannot close while frozen
	go servePings(g)

	time.Sleep(300 * time.Millisecond) // pings answered: alive
	if !alive(c) {
		t.Fatal("the keep-alive ended a session whose guest answers")
	}
	c.SetPaused(true)
	fz.freeze()
	time.Sleep(600 * time.Millisecond) // 30 intervals, 6 timeouts
	if !alive(c) {
		t.Fatal("the keep-alive ended the session of a paused guest")
	}
	fz.thaw()
	c.SetPaused(false)
	if _, err := c.Ping(ctx); err != nil || !alive(c) {
		t.Fatalf("after the pause: %v (alive %v)", err, alive(c))
	}
	fz.freeze() // hung, not paused
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the keep-alive did not end the session of a guest that stopped answering")
	}
}
