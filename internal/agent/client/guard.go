package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// What a guest can make the host hold through the channel, and the
// bounds:
//
//   - streams the guest opens: refused. The guard drops the frame that
//     opens one (and the host sends yamux's GoAway right after the
//     handshake), so yamux discards the stream's data without buffering
//     it (before, up to 256 such streams waited for an Accept that never
//     came, each holding up to its 256 KiB window).
//   - data on the host's own streams: yamux's per-stream window (256 KiB)
//     on streams the host opened and reads; reply lines are bounded by
//     proto.ReadLine, frames by proto.MaxFrame. The guard holds one
//     yamux frame at a time (at most maxDataFrame) so that a frame cut
//     short never stalls the host's reads (Read).
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
	yamuxHeader           = 12
	yamuxTypeData         = 0
	yamuxTypeWindowUpdate = 1
	yamuxTypePing         = 2
	yamuxFlagSYN          = 1
)

// pingGuard sits between the channel and the host's yamux session and
// drops ping requests beyond the budget. It reads through the
// handshake's buffered reader, which may already hold the first bytes of
// the agent's session.
type pingGuard struct {
	net.Conn
	r      io.Reader
	frame  []byte // the current frame, whole
	off    int    // bytes of frame already handed out
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newPingGuard(r io.Reader, c net.Conn) *pingGuard {
	return &pingGuard{Conn: c, r: r, tokens: pingBurst, now: time.Now}
}

// maxDataFrame is the largest data frame a guest may send: no stream
// window of the host's is larger (yamux's default maximum).
const maxDataFrame = 256 << 10

// Read hands out whole frames only: a data frame is read to its end
// before its header is passed on. yamux reads a frame's body holding
// its stream's lock, so a guest that stopped mid-frame would otherwise
// block every read of that stream, deadlines included, until the
// session's keep-alive gave up (~25 s).
func (g *pingGuard) Read(p []byte) (int, error) {
	for g.off >= len(g.frame) {
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, g.frame[g.off:])
	g.off += n
	return n, nil
}

// next reads the next frame to pass on, dropping pings over budget.
func (g *pingGuard) next() error {
	g.frame, g.off = g.frame[:0], 0
	var hdr [yamuxHeader]byte
	if _, err := io.ReadFull(g.r, hdr[:]); err != nil {
		return err
	}
	typ, flags, id, length := hdr[1], binary.BigEndian.Uint16(hdr[2:4]), binary.BigEndian.Uint32(hdr[4:8]), binary.BigEndian.Uint32(hdr[8:12])
	if typ == yamuxTypePing && flags&yamuxFlagSYN != 0 && !g.allowPing() {
		return nil
	}
	if typ == yamuxTypeData && length > maxDataFrame {
		return fmt.Errorf("agent channel: the guest sent a %d-byte frame, more than any stream window (%d)", length, maxDataFrame)
	}
	if guestOpens(typ, flags, id) {
		// Dropped here, body and all, so no guest stream ever opens: the
		// GoAway sent after the handshake only covers frames yamux reads
		// after it, and a guest's burst right behind its READY could
		// otherwise open streams before it. yamux discards the data of
		// the stream ids it never saw opened.
		if typ == yamuxTypeData {
			_, err := io.CopyN(io.Discard, g.r, int64(length))
			return err
		}
		return nil
	}
	g.frame = append(g.frame, hdr[:]...)
	if typ != yamuxTypeData || length == 0 {
		return nil
	}
	g.frame = slices.Grow(g.frame, int(length))[:yamuxHeader+int(length)]
	_, err := io.ReadFull(g.r, g.frame[yamuxHeader:])
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// guestOpens reports a frame that opens a stream from the guest's side:
// a SYN on a data or window update frame with an even stream id (the
// host is yamux's client and opens odd ones).
func guestOpens(typ byte, flags uint16, id uint32) bool {
	return (typ == yamuxTypeData || typ == yamuxTypeWindowUpdate) && flags&yamuxFlagSYN != 0 && id != 0 && id%2 == 0
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
