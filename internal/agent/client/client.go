// Package client is the host side of the guest agent channel. It does the
// handshake over a byte stream that reaches the agent (a connection to
// QEMU's virtio-serial chardev socket, or a vsock connection) and sends
// typed requests over a yamux session on it. The daemon keeps one Client
// per running VM.
package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// helloInterval is how often HELLO is resent until READY arrives. A copy
// can be lost: on virtio-serial the agent may still be tearing down the
// session of the previous host connection, whose reader swallows it.
// Copies queued while the guest boots cost a few bytes each.
const helloInterval = 200 * time.Millisecond

// Client is a session with one guest agent.
type Client struct {
	sess         *yamux.Session
	agentVersion string

	kaMu   sync.Mutex // keepalive.go
	paused bool
	pauses uint64
}

// Connect performs the handshake on conn and starts the session. ctx
// bounds the handshake only; it is usually the time the guest gets to
// boot. On failure conn is closed.
func Connect(ctx context.Context, conn net.Conn) (*Client, error) {
	nonce, err := newNonce()
	if err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	release := bindContext(ctx, conn)
	version, err := handshake(conn, br, nonce)
	if cerr := release(); cerr != nil {
		err = cerr
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent handshake: %w", err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false // ours: keepalive.go
	sess, err := yamux.Client(newPingGuard(br, conn), cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	// The host accepts no streams from the guest (guard.go): with GoAway
	// sent, yamux resets each one on arrival without buffering its data.
	// It fails only on a session that has already ended, which requests
	// then report (ErrClosed).
	sess.GoAway()
	c := &Client{sess: sess, agentVersion: version}
	go c.keepAlive(KeepAliveInterval, KeepAliveTimeout)
	return c, nil
}

// handshake sends HELLO (again every helloInterval) until a READY with
// our nonce arrives; anything else on the channel, such as a stale
// session's bytes, is skipped.
func handshake(conn net.Conn, br *bufio.Reader, nonce string) (string, error) {
	hello := []byte(proto.HelloPrefix + nonce + "\n")
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(helloInterval)
		defer t.Stop()
		for {
			if _, err := conn.Write(hello); err != nil {
				return
			}
			select {
			case <-t.C:
			case <-done:
				return
			}
		}
	}()
	// No HELLO may follow the first yamux byte: wait for the sender.
	defer wg.Wait()
	defer close(done)
	for {
		rest, err := proto.ScanForLine(br, proto.ReadyPrefix)
		if err != nil {
			return "", err
		}
		if f := strings.Fields(rest); len(f) > 0 && f[0] == nonce {
			if len(f) > 1 {
				return f[1], nil
			}
			return "", nil
		}
	}
}

func newNonce() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("agent handshake nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// AgentVersion is the version the agent announced in the handshake.
func (c *Client) AgentVersion() string { return c.agentVersion }

// Close ends the session and closes the connection.
func (c *Client) Close() error { return c.sess.Close() }

// Done is closed when the session has ended (the guest went away, the
// connection broke, or Close was called).
func (c *Client) Done() <-chan struct{} { return c.sess.CloseChan() }

// deadliner is what bindContext needs: net.Conn and yamux streams.
type deadliner interface{ SetDeadline(time.Time) error }

// bindContext applies ctx to c's I/O: its deadline, and an immediate one
// when ctx is cancelled. release clears both; it returns the context's
// error when ctx is done (or its deadline has passed: the connection's
// deadline can fire before the context's own timer), in which case c's
// deadline may stay in the past.
func bindContext(ctx context.Context, c deadliner) (release func() error) {
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		c.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return func() error {
		stop()
		if err := ctx.Err(); err != nil {
			return err
		}
		if hasDeadline && !time.Now().Before(deadline) {
			return context.DeadlineExceeded
		}
		c.SetDeadline(time.Time{})
		return nil
	}
}

// RequestError is a request the agent received and refused or failed,
// as opposed to a broken channel.
type RequestError struct {
	Op      string
	Message string
}

func (e *RequestError) Error() string { return "agent " + e.Op + ": " + e.Message }

// ErrClosed is returned for requests on a client whose session ended.
var ErrClosed = errors.New("agent session closed")
