package client

import (
	"time"
)

// The host's keep-alive: every KeepAliveInterval the client pings the
// agent and ends the session when no answer comes within
// KeepAliveTimeout (a hung guest, a VMM gone without closing the
// channel), which ends the VM's open streams with an error rather than
// leaving them waiting forever.
//
// It is banger's own loop rather than yamux's (EnableKeepAlive is off)
// because a paused VM cannot answer: its vCPUs are stopped, and yamux's
// keep-alive would end the session, and every exec stream on it, after
// any pause longer than its timeout (measured under QEMU: a 20 s pause
// killed an exec stream). SetPaused(true) stops the pings for as long as
// the VM is paused, and a ping that was in flight when the pause began
// does not count; the streams simply wait and continue after the resume.
// The agent's side needs nothing: its keep-alive is frozen with the
// guest.
var (
	KeepAliveInterval = 15 * time.Second
	KeepAliveTimeout  = 10 * time.Second
)

// SetPaused tells the client whether its guest's vCPUs are stopped (vm
// pause, a save or snapshot in progress): while they are, no keep-alive
// ping is sent and none can end the session.
func (c *Client) SetPaused(paused bool) {
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	if paused && !c.paused {
		c.pauses++
	}
	c.paused = paused
}

func (c *Client) pauseState() (bool, uint64) {
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	return c.paused, c.pauses
}

// keepAlive runs until the session ends.
func (c *Client) keepAlive(interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.sess.CloseChan():
			return
		case <-t.C:
		}
		paused, pauses := c.pauseState()
		if paused {
			continue
		}
		if c.ping(timeout) {
			continue
		}
		if p, n := c.pauseState(); p || n != pauses {
			continue // the VM was paused during the ping
		}
		c.sess.Close()
		return
	}
}

// ping reports whether the agent answered a ping within timeout.
func (c *Client) ping(timeout time.Duration) bool {
	res := make(chan error, 1)
	go func() {
		_, err := c.sess.Ping() // gives up after yamux's ConnectionWriteTimeout
		res <- err
	}()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case err := <-res:
		return err == nil
	case <-tm.C:
		return false
	}
}
