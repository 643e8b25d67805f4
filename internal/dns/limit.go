package dns

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
)

// Bounds on what clients (guests, mostly) can make the server hold.
// Forwarded queries are the expensive ones (a goroutine and an upstream
// wait of up to Timeout each): at most DefaultPerSource per client
// address and DefaultMaxInFlight in total are resolved at once; a query
// beyond either is answered SERVFAIL at once, so a flooding guest only
// gets failures while other guests keep resolving. `.vm` answers are
// computed inline and need no bound. TCP connections are limited per
// client address and in total; an excess connection is closed on accept.
const (
	DefaultPerSource   = 32
	DefaultMaxInFlight = 256
	maxTCPPerSource    = 8
	maxTCPConns        = 64
)

// limiter counts forwarded queries in flight per source and in total.
type limiter struct {
	mu       sync.Mutex
	per, max int
	bySource map[netip.Addr]int
	total    int
}

func newLimiter(per, max int) *limiter {
	return &limiter{per: per, max: max, bySource: map[netip.Addr]int{}}
}

func (l *limiter) acquire(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.bySource[src] >= l.per {
		return false
	}
	l.total++
	l.bySource[src]++
	return true
}

func (l *limiter) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

// addrOf is the client address of a net.Addr (zero when unknown).
func addrOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// limitListener closes connections beyond maxTCPPerSource per client
// address or maxTCPConns in total as soon as they are accepted.
type limitListener struct {
	net.Listener
	lim *limiter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := addrOf(c.RemoteAddr())
		if !l.lim.acquire(src) {
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: sync.OnceFunc(func() { l.lim.release(src) })}, nil
	}
}

type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// serveUDP is the UDP side. miekg/dns's own UDP loop starts a goroutine
// per datagram before any handler runs, so a flood would be bounded by
// nothing; here a goroutine exists only for an admitted forward, and
// everything else is answered from the read loop.
func (s *Server) serveUDP(pc *net.UDPConn) {
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.Log.Warn("dns udp read", "err", err)
			return
		}
		req, reply := parseQuery(buf[:n])
		if req == nil {
			if reply != nil {
				writeUDP(pc, from, reply, nil)
			}
			continue
		}
		if reply = s.answerLocal(req); reply != nil {
			writeUDP(pc, from, reply, req)
			continue
		}
		src := from.Addr().Unmap()
		if reply = s.refused(src, req); reply != nil {
			writeUDP(pc, from, reply, req)
			continue
		}
		if !s.lim.acquire(src) {
			writeUDP(pc, from, servfail(req), req)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.lim.release(src)
			writeUDP(pc, from, s.answered(src, s.forward(req, "udp")), req)
		}()
	}
}

// parseQuery decodes a datagram. Responses and runts get nothing (an
// answer to either could start a loop or amplify a spoofed flood); a
// query that does not decode gets FORMERR with its ID.
func parseQuery(b []byte) (req, reply *dns.Msg) {
	var h dns.Msg
	if len(b) < 12 {
		return nil, nil
	}
	if b[2]&0x80 != 0 { // QR: a response
		return nil, nil
	}
	req = new(dns.Msg)
	if err := req.Unpack(b); err != nil {
		h.Id = uint16(b[0])<<8 | uint16(b[1])
		h.Response = true
		h.Opcode = int(b[2]>>3) & 0xf
		h.Rcode = dns.RcodeFormatError
		return nil, &h
	}
	return req, nil
}

// writeUDP sends m, truncated to what the client can take.
func writeUDP(pc *net.UDPConn, to netip.AddrPort, m, req *dns.Msg) {
	size := dns.MinMsgSize
	if req != nil {
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
	}
	m.Truncate(size)
	b, err := m.Pack()
	if err != nil {
		// A question that decoded but does not encode again: the client
		// still hears back, with its ID.
		h := &dns.Msg{MsgHdr: dns.MsgHdr{Id: m.Id, Response: true, Opcode: m.Opcode, Rcode: dns.RcodeServerFailure}}
		if b, err = h.Pack(); err != nil {
			return
		}
	}
	pc.WriteToUDPAddrPort(b, to)
}

func servfail(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}
