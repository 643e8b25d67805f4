package dns

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// The UDP upstream pool. Forwarded UDP queries share a few long-lived
// sockets per upstream instead of opening one each: a query gets an ID
// that is unique among those in flight on its socket (chosen at random,
// and the reply must also repeat the question), and the client's own ID
// is put back on the reply. A socket is retired after usesPerSocket
// queries and closed once its last reply is in, so the source port still
// changes every few hundred queries; an idle socket closes after
// idleSocket. Sockets in use are bounded by socketsPerUpstream per
// upstream plus retired ones still waiting (at most one per query in
// flight, which the server bounds).
const (
	socketsPerUpstream = 4
	usesPerSocket      = 256
	idleSocket         = 30 * time.Second
)

var errPoolClosed = errors.New("dns: upstream pool closed")

type upstreamPool struct {
	mu     sync.Mutex
	socks  map[string][]*upSocket // live (not retired) sockets per upstream
	all    map[*upSocket]struct{} // every open socket, retired included
	closed bool
}

type upSocket struct {
	addr    string
	conn    *net.UDPConn
	pending map[uint16]*waiter // guarded by upstreamPool.mu
	uses    int
	retired bool
}

type waiter struct {
	q  dns.Question
	ch chan *dns.Msg // buffered: the reader never blocks on it
}

func newUpstreamPool() *upstreamPool {
	return &upstreamPool{socks: map[string][]*upSocket{}, all: map[*upSocket]struct{}{}}
}

// exchange sends req to addr over a pooled socket and waits for the
// matching reply until ctx ends.
func (p *upstreamPool) exchange(ctx context.Context, addr string, req *dns.Msg) (*dns.Msg, error) {
	if len(req.Question) != 1 {
		return nil, errors.New("dns: forward needs exactly one question")
	}
	w := &waiter{q: req.Question[0], ch: make(chan *dns.Msg, 1)}
	s, id, err := p.reserve(addr, w)
	if err != nil {
		return nil, err
	}
	defer p.release(s, id)
	m := req.Copy()
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := s.conn.Write(b); err != nil {
		return nil, err
	}
	select {
	case r := <-w.ch:
		if r == nil {
			return nil, errors.New("dns: upstream socket closed")
		}
		r.Id = req.Id
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// reserve picks (or opens) a socket for addr and registers w under a
// fresh ID on it.
func (p *upstreamPool) reserve(addr string, w *waiter) (*upSocket, uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, 0, errPoolClosed
	}
	var s *upSocket
	for _, c := range p.socks[addr] {
		if s == nil || len(c.pending) < len(s.pending) {
			s = c
		}
	}
	if s == nil || (len(s.pending) > 0 && len(p.socks[addr]) < socketsPerUpstream) {
		ns, err := p.open(addr)
		if err != nil && s == nil {
			return nil, 0, err
		}
		if err == nil {
			s = ns
		}
	}
	id := uint16(rand.N(1 << 16))
	for s.pending[id] != nil {
		id = uint16(rand.N(1 << 16))
	}
	s.pending[id] = w
	if s.uses++; s.uses >= usesPerSocket {
		p.retire(s)
	}
	return s, id, nil
}

// open dials a new socket and starts its reader. p.mu is held.
func (p *upstreamPool) open(addr string) (*upSocket, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	s := &upSocket{addr: addr, conn: c.(*net.UDPConn), pending: map[uint16]*waiter{}}
	p.socks[addr] = append(p.socks[addr], s)
	p.all[s] = struct{}{}
	go p.read(s)
	return s, nil
}

// retire stops giving s new queries; it closes once nothing waits on it.
// p.mu is held.
func (p *upstreamPool) retire(s *upSocket) {
	if s.retired {
		return
	}
	s.retired = true
	list := p.socks[s.addr]
	for i, c := range list {
		if c == s {
			p.socks[s.addr] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(p.socks[s.addr]) == 0 {
		delete(p.socks, s.addr)
	}
	p.closeIfDone(s)
}

// closeIfDone closes a retired socket without pending queries. p.mu is held.
func (p *upstreamPool) closeIfDone(s *upSocket) {
	if s.retired && len(s.pending) == 0 {
		if _, ok := p.all[s]; ok {
			delete(p.all, s)
			s.conn.Close()
		}
	}
}

func (p *upstreamPool) release(s *upSocket, id uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(s.pending, id)
	p.closeIfDone(s)
}

// read delivers replies to their waiters until the socket is closed or
// stays idle.
func (p *upstreamPool) read(s *upSocket) {
	buf := make([]byte, dns.MaxMsgSize)
	for {
		s.conn.SetReadDeadline(time.Now().Add(idleSocket))
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			p.mu.Lock()
			if errors.As(err, &ne) && ne.Timeout() && len(s.pending) > 0 && !p.closed {
				p.mu.Unlock()
				continue
			}
			// Idle, closed, or broken (ICMP refused): fail what waits.
			p.retire(s)
			for id, w := range s.pending {
				delete(s.pending, id)
				w.ch <- nil
			}
			p.closeIfDone(s)
			p.mu.Unlock()
			return
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) != nil || !r.Response || len(r.Question) != 1 {
			continue
		}
		p.mu.Lock()
		if w := s.pending[r.Id]; w != nil && sameQuestion(w.q, r.Question[0]) {
			delete(s.pending, r.Id)
			w.ch <- r
		}
		p.mu.Unlock()
	}
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// close shuts every socket; waiting queries fail.
func (p *upstreamPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for s := range p.all {
		s.conn.Close()
	}
}
