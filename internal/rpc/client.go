package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

// Conn is an open call on the client side.
type Conn struct {
	net.Conn
	R *bufio.Reader
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
			return fmt.Errorf("daemon closed the connection: %w", err)
		}
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("bad reply from daemon: %w", err)
		}
		switch {
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
