package firecracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Hybrid vsock (firecracker-notes.md §6): connect to the device's unix
// socket, send "CONNECT <port>\n", read "OK <host port>\n"; the stream is
// then the guest connection. When nothing listens on the guest port yet,
// Firecracker closes the socket instead of answering, so the dial is
// retried with backoff until ctx ends.
const (
	vsockAckTimeout = 5 * time.Second // one attempt: the guest accepted but may be frozen
	vsockMaxBackoff = 500 * time.Millisecond
	vsockMaxAckLine = 64
)

// errNoListener is an attempt that Firecracker closed: no guest listener.
var errNoListener = errors.New("no guest listener (firecracker closed the connection)")

func dialVsock(ctx context.Context, uds string, port uint32, done <-chan struct{}) (net.Conn, error) {
	backoff := 10 * time.Millisecond
	var last error // the last attempt not cut short by ctx says more
	for {
		conn, err := vsockConnect(ctx, uds, port)
		if err == nil {
			return conn, nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial agent vsock port %d: %w (last attempt: %v)", port, ctx.Err(), last)
		case <-done:
			return nil, fmt.Errorf("dial agent vsock port %d: firecracker exited (last attempt: %v)", port, last)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, vsockMaxBackoff)
	}
}

// vsockConnect makes one attempt. Every failure closes the connection.
func vsockConnect(ctx context.Context, uds string, port uint32) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", uds)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(vsockAckTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	// Cancellation without a deadline must still wake the blocked read.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err = vsockHandshake(conn, port)
	if !stop() && err == nil {
		err = ctx.Err() // the deadline was poisoned under us
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

func vsockHandshake(conn net.Conn, port uint32) error {
	if _, err := fmt.Fprintf(conn, "CONNECT %d\n", port); err != nil {
		return fmt.Errorf("vsock CONNECT %d: %w", port, err)
	}
	line, err := readAckLine(conn)
	switch {
	case errors.Is(err, io.EOF):
		return errNoListener
	case err != nil:
		return fmt.Errorf("vsock CONNECT %d: %w", port, err)
	case !strings.HasPrefix(line, "OK "):
		return fmt.Errorf("vsock CONNECT %d: unexpected answer %q", port, line)
	}
	return nil
}

// readAckLine reads one byte at a time so that no byte the guest sends
// right after the ack is swallowed by a buffer.
func readAckLine(r io.Reader) (string, error) {
	var b strings.Builder
	one := make([]byte, 1)
	for b.Len() < vsockMaxAckLine {
		if _, err := io.ReadFull(r, one); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			return "", err
		}
		if one[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(one[0])
	}
	return "", fmt.Errorf("ack line longer than %d bytes", vsockMaxAckLine)
}
