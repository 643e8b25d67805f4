package client

import (
	"encoding/binary"
	"io"
	"net"
	"time"
)

// What a guest can make the host hold through the channel, and the
// bounds:
//
//   - streams the guest opens: refused. The host sends yamux's GoAway
//     right after the handshake, so every stream the guest opens is reset
//     on arrival and its data discarded without being buffered (before,
//     up to 256 such streams waited for an Accept that never came, each
//     holding up to its 256 KiB window).
//   - data on the host's own streams: yamux's per-stream window (256 KiB)
//     on streams the host opened and reads; reply lines are bounded by
//     proto.ReadLine, frames by proto.MaxFrame.
//   - pings: yamux answers each ping from a new goroutine that may wait
//     for the connection (up to its write timeout), so pingGuard passes
//     at most pingBurst pings, refilled at pingsPerSecond, and drops the
//     rest (the agent's keep-alive sends one every 30 s).
const (
	pingsPerSecond = 4
	pingBurst      = 16
)

// yamux framing (github.com/hashicorp/yamux spec.md): a 12-byte header
// of version, type, flags, stream ID and length; only data frames carry
// length bytes of body.
const (
	yamuxHeader   = 12
	yamuxTypeData = 0
	yamuxTypePing = 2
	yamuxFlagSYN  = 1
)

// pingGuard sits between the channel and the host's yamux session and
// drops ping requests beyond the budget. It reads through the
// handshake's buffered reader, which may already hold the first bytes of
// the agent's session.
type pingGuard struct {
	net.Conn
	r      io.Reader
	hdr    [yamuxHeader]byte
	hdrOff int // header bytes already handed out; yamuxHeader = none pending
	body   uint32
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newPingGuard(r io.Reader, c net.Conn) *pingGuard {
	return &pingGuard{Conn: c, r: r, hdrOff: yamuxHeader, tokens: pingBurst, now: time.Now}
}

func (g *pingGuard) Read(p []byte) (int, error) {
	for {
		if g.hdrOff < yamuxHeader {
			n := copy(p, g.hdr[g.hdrOff:])
			g.hdrOff += n
			return n, nil
		}
		if g.body > 0 {
			if uint32(len(p)) > g.body {
				p = p[:g.body]
			}
			n, err := g.r.Read(p)
			g.body -= uint32(n)
			return n, err
		}
		if _, err := io.ReadFull(g.r, g.hdr[:]); err != nil {
			return 0, err
		}
		typ, flags := g.hdr[1], binary.BigEndian.Uint16(g.hdr[2:4])
		if typ == yamuxTypeData {
			g.body = binary.BigEndian.Uint32(g.hdr[8:12])
		}
		if typ == yamuxTypePing && flags&yamuxFlagSYN != 0 && !g.allowPing() {
			continue
		}
		g.hdrOff = 0
	}
}

func (g *pingGuard) allowPing() bool {
	now := g.now()
	if !g.last.IsZero() {
		g.tokens = min(pingBurst, g.tokens+now.Sub(g.last).Seconds()*pingsPerSecond)
	}
	g.last = now
	if g.tokens < 1 {
		return false
	}
	g.tokens--
	return true
}
