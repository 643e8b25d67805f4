package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// QMP is small enough that a few dozen lines beat digitalocean/go-qemu,
// whose qmp package drags in go-libvirt.

// qmpConn is one negotiated QMP connection. QEMU serves one QMP client
// at a time, so a connection is held only for one operation.
type qmpConn struct {
	ctx  context.Context
	conn net.Conn
	r    *bufio.Reader
	enc  *json.Encoder
}

// qmpDial connects, reads the greeting and leaves capabilities
// negotiation mode.
func qmpDial(ctx context.Context, sock string) (*qmpConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("qmp connect: %w", err)
	}
	q := &qmpConn{ctx: ctx, conn: conn, r: bufio.NewReader(conn), enc: json.NewEncoder(conn)}
	q.deadline()
	if _, err := q.r.ReadBytes('\n'); err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if _, err := q.run("qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// deadline bounds the next exchange by ctx, or by 5 seconds without one.
func (q *qmpConn) deadline() {
	if dl, ok := q.ctx.Deadline(); ok {
		q.conn.SetDeadline(dl)
	} else {
		q.conn.SetDeadline(time.Now().Add(5 * time.Second))
	}
}

func (q *qmpConn) Close() error { return q.conn.Close() }

// run executes one command and returns its "return" value; events
// arriving meanwhile are skipped.
func (q *qmpConn) run(command string, args any) (json.RawMessage, error) {
	type request struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}
	q.deadline()
	if err := q.enc.Encode(request{Execute: command, Arguments: args}); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		var m struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
		}
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if m.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s", command, m.Error.Desc)
		}
		if m.Return != nil {
			return m.Return, nil
		}
	}
}

// qmpRun runs one QMP command with optional arguments on a connection of
// its own.
func qmpRun(ctx context.Context, sock, command string, args any) (json.RawMessage, error) {
	q, err := qmpDial(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return q.run(command, args)
}
