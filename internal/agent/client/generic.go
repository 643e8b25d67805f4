package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// Do sends a request-response op: params are marshalled into
// Request.Params and Response.Data is unmarshalled into out (when non-nil).
func (c *Client) Do(ctx context.Context, op string, params, out any) error {
	st, data, err := c.Open(ctx, op, params)
	if err != nil {
		return err
	}
	st.Close()
	if out == nil {
		return nil
	}
	if len(data) == 0 {
		return fmt.Errorf("agent %s: reply without data", op)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("agent %s: decode reply: %w", op, err)
	}
	return nil
}

// Open sends an op whose reply line is followed by a byte stream (copy in
// or out): it returns the stream positioned after the reply and the
// reply's Data. ctx bounds only the request and reply.
func (c *Client) Open(ctx context.Context, op string, params any) (net.Conn, json.RawMessage, error) {
	req := proto.Request{Op: op}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, nil, fmt.Errorf("agent %s: encode params: %w", op, err)
		}
		req.Params = b
	}
	st, resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	return st, resp.Data, nil
}
