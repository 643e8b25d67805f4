package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

// Conn is an open call on the client side.
type Conn struct {
	net.Conn
	R *bufio.Reader
	// Body receives the response body (chunks the daemon writes before
	// its result); a call that gets one without a Body fails.
	Body io.Writer

	sendErr  chan error // SendBody's outcome; nil when no body is sent
	localErr error      // why SendBody gave up on the local reader
}

// SendBody sends body as the request body, in the background, while Wait
// reads progress. A body that fails to read (a local file error) ends
// the call: Wait then returns that error.
func (c *Conn) SendBody(body io.Reader) {
	c.sendErr = make(chan error, 1)
	go func() {
		err := sendBody(c.Conn, readErrTracker{body, &c.localErr})
		if c.localErr != nil {
			c.Conn.Close()
		}
		c.sendErr <- err
	}()
}

// readErrTracker records a read error of the local body (as opposed to a
// write error on the connection, which the daemon's answer explains).
type readErrTracker struct {
	r   io.Reader
	err *error
}

func (t readErrTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		*t.err = err
	}
	return n, err
}

// Start dials socket, sends the request, and returns the open connection.
func Start(ctx context.Context, dial func(ctx context.Context) (net.Conn, error), method string, params any) (*Conn, error) {
	nc, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(api.Request{V: api.Version, Method: method, Params: params})
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := nc.Write(append(b, '\n')); err != nil {
		// A daemon turning the connection away (busy) has written why.
		nc.SetReadDeadline(time.Now().Add(time.Second))
		line, _ := bufio.NewReader(nc).ReadBytes('\n')
		nc.Close()
		var m message
		if json.Unmarshal(line, &m) == nil && m.Error != nil {
			return nil, m.Error
		}
		return nil, fmt.Errorf("send %s: %w", method, err)
	}
	return &Conn{Conn: nc, R: bufio.NewReaderSize(nc, 64<<10)}, nil
}

// Read reads the stream after the result through R, which may already
// hold bytes the server sent right behind the result line.
func (c *Conn) Read(p []byte) (int, error) { return c.R.Read(p) }

// Wait reads progress lines (passing each to onProgress) until the result,
// which it decodes into out. ctx cancellation closes the connection.
func (c *Conn) Wait(ctx context.Context, onProgress func(api.Progress), out any) error {
	stop := context.AfterFunc(ctx, func() { c.Conn.Close() })
	defer stop()
	for {
		line, err := c.R.ReadBytes('\n')
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if c.sendErr != nil {
				<-c.sendErr
				c.sendErr = nil
				if c.localErr != nil {
					return c.localErr
				}
			}
			return fmt.Errorf("daemon closed the connection: %w", err)
		}
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("bad reply from daemon: %w", err)
		}
		switch {
		case m.Chunk > 0:
			if m.Chunk > maxChunk || c.Body == nil {
				return fmt.Errorf("bad reply from daemon: unexpected body chunk of %d bytes", m.Chunk)
			}
			if _, err := io.CopyN(c.Body, c.R, int64(m.Chunk)); err != nil {
				return fmt.Errorf("receive body: %w", err)
			}
		case m.Progress != nil:
			if onProgress != nil {
				onProgress(*m.Progress)
			}
		case m.Error != nil:
			return m.Error
		default:
			if out == nil || len(m.Result) == 0 {
				return nil
			}
			return json.Unmarshal(m.Result, out)
		}
	}
}
