package client

import (
	"context"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// SetTime sets the guest's wall clock to t (after a resume or restore:
// the guest's clock stood still while its vCPUs were stopped). An agent
// that predates the op answers with a *RequestError "unknown op".
func (c *Client) SetTime(ctx context.Context, t time.Time) error {
	return c.Do(ctx, proto.OpSetTime, proto.SetTimeParams{UnixNano: t.UnixNano()}, nil)
}

// Reseed adds entropy (proto.MinReseedBytes to MaxReseedBytes) to the
// guest kernel's pool and forces its CRNG to rekey (after a restore, so
// that two restores of one snapshot do not share random numbers).
func (c *Client) Reseed(ctx context.Context, entropy []byte) error {
	return c.Do(ctx, proto.OpReseed, proto.ReseedParams{Entropy: entropy}, nil)
}

// Reidentify gives a forked guest its own identity (proto.OpReidentify).
func (c *Client) Reidentify(ctx context.Context, p proto.ReidentifyParams) (proto.ReidentifyResult, error) {
	var res proto.ReidentifyResult
	err := c.Do(ctx, proto.OpReidentify, p, &res)
	return res, err
}
