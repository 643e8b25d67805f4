package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// Ping asks the agent about itself and the guest.
func (c *Client) Ping(ctx context.Context) (proto.Info, error) {
	st, resp, err := c.roundTrip(ctx, proto.Request{Op: proto.OpPing})
	if err != nil {
		return proto.Info{}, err
	}
	st.Close()
	if resp.Info == nil {
		return proto.Info{}, fmt.Errorf("agent ping: reply without info")
	}
	return *resp.Info, nil
}

// OpenExec starts a process in the guest and returns its stream positioned
// at the exec frames, for proto.PumpExec or a splice. ctx bounds only the
// start; closing the stream before the exit frame kills the process. A
// process that cannot start is a *RequestError.
func (c *Client) OpenExec(ctx context.Context, req proto.ExecRequest) (net.Conn, error) {
	st, _, err := c.roundTrip(ctx, proto.Request{Op: proto.OpExec, Exec: &req})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Exec runs a process in the guest to completion, streaming stdio. nil
// stdin is an empty input; nil stdout or stderr discards. Cancelling ctx
// kills the process and returns ctx.Err().
func (c *Client) Exec(ctx context.Context, req proto.ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (proto.ExitStatus, error) {
	st, err := c.OpenExec(ctx, req)
	if err != nil {
		return proto.ExitStatus{}, err
	}
	defer st.Close()
	// Closing our side is what tells the agent to kill the process.
	stop := context.AfterFunc(ctx, func() {
		st.SetDeadline(time.Unix(1, 0))
		st.Close()
	})
	defer stop()
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	status, err := proto.PumpExec(st, stdin, stdout, stderr, nil)
	if ctx.Err() != nil {
		return status, ctx.Err()
	}
	if err != nil {
		return status, fmt.Errorf("agent exec: %w", err)
	}
	return status, nil
}

// Shutdown asks the guest to power off and returns once the agent has
// acknowledged; the VM stops some seconds later.
func (c *Client) Shutdown(ctx context.Context) error {
	st, _, err := c.roundTrip(ctx, proto.Request{Op: proto.OpShutdown})
	if err != nil {
		return err
	}
	// The agent waits for this close before it powers off, so that its
	// reply is not lost with the VM.
	return st.Close()
}

// roundTrip opens a stream, sends req and reads the agent's reply. On
// success the stream is returned open with no deadline.
func (c *Client) roundTrip(ctx context.Context, req proto.Request) (*yamux.Stream, proto.Response, error) {
	var resp proto.Response
	if err := ctx.Err(); err != nil {
		return nil, resp, err
	}
	// OpenStream does not wait for the agent: it blocks only when 256
	// streams are unacknowledged, and returns when the session ends.
	st, err := c.sess.OpenStream()
	if err != nil {
		if c.sess.IsClosed() {
			err = ErrClosed
		}
		return nil, resp, fmt.Errorf("agent %s: %w", req.Op, err)
	}
	release := bindContext(ctx, st)
	err = proto.WriteLine(st, req)
	if err == nil {
		err = proto.ReadLine(st, &resp)
	}
	if cerr := release(); cerr != nil {
		err = cerr
	}
	if err != nil {
		st.Close()
		if c.sess.IsClosed() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = ErrClosed
		}
		return nil, resp, fmt.Errorf("agent %s: %w", req.Op, err)
	}
	if !resp.OK {
		st.Close()
		return nil, resp, &RequestError{Op: req.Op, Message: resp.Error}
	}
	return st, resp, nil
}
