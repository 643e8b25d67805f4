package dns

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The DNS fuzz target sends arbitrary datagrams to a running server (one
// per fuzzing process) whose upstream is a recording fake, and checks:
// no panic (the server keeps answering), a datagram that is a query gets
// exactly one reply carrying its ID, a response or runt gets none, no
// question under .vm ever reaches the upstream, and parsing a datagram
// allocates in proportion to its size.

type fuzzEnv struct {
	s        *Server
	client   *net.UDPConn
	upstream *net.UDPConn
	leaked   atomic.Pointer[string] // a .vm name the upstream saw
}

var (
	fuzzOnce sync.Once
	fuzzE    *fuzzEnv
	fuzzErr  error
)

func fuzzSetup() (*fuzzEnv, error) {
	fuzzOnce.Do(func() {
		e := &fuzzEnv{}
		up, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			fuzzErr = err
			return
		}
		e.upstream = up
		go e.serveUpstream()
		e.s = &Server{
			Lookup: func(name string) (netip.Addr, bool) {
				return netip.MustParseAddr("10.77.0.2"), name == "dev"
			},
			Upstreams: func() ([]string, error) { return []string{up.LocalAddr().String()}, nil },
			Timeout:   300 * time.Millisecond,
		}
		if fuzzErr = e.s.Start(netip.MustParseAddrPort("127.0.0.1:0")); fuzzErr != nil {
			return
		}
		e.client, fuzzErr = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(e.s.Addr()))
		fuzzE = e
	})
	return fuzzE, fuzzErr
}

// serveUpstream answers what it can decode, echoing the question, and
// records any question under .vm (read from the wire, not through the
// library the server uses to decide).
func (e *fuzzEnv) serveUpstream() {
	buf := make([]byte, 65535)
	for {
		n, from, err := e.upstream.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if labels, ok := wireQuestionLabels(buf[:n]); ok && len(labels) > 0 && bytes.EqualFold(labels[len(labels)-1], []byte("vm")) {
			name := string(bytes.Join(labels, []byte(".")))
			e.leaked.Store(&name)
		}
		req := new(dns.Msg)
		if req.Unpack(buf[:n]) != nil {
			continue
		}
		m := new(dns.Msg)
		m.SetReply(req)
		if b, err := m.Pack(); err == nil {
			e.upstream.WriteToUDPAddrPort(b, from)
		}
	}
}

// wireQuestionLabels returns the labels of the first question's name.
func wireQuestionLabels(b []byte) ([][]byte, bool) {
	if len(b) < 12 || b[4] == 0 && b[5] == 0 {
		return nil, false
	}
	var labels [][]byte
	off, hops := 12, 0
	for {
		if off >= len(b) {
			return nil, false
		}
		l := int(b[off])
		switch {
		case l == 0:
			return labels, true
		case l&0xC0 == 0xC0:
			if off+1 >= len(b) || hops > 64 {
				return nil, false
			}
			off, hops = int(b[off]&0x3F)<<8|int(b[off+1]), hops+1
		case l&0xC0 != 0:
			return nil, false
		default:
			if off+1+l > len(b) {
				return nil, false
			}
			labels = append(labels, b[off+1:off+1+l])
			off += 1 + l
		}
	}
}

// sentinel is a query that always gets an answer, to check that nothing
// else was in the pipe.
func sentinel(id uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion("dev.vm.", dns.TypeA)
	m.Id = id
	b, _ := m.Pack()
	return b
}

func FuzzDNSHandler(f *testing.F) {
	f.Add(sentinel(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := fuzzSetup()
		if err != nil {
			t.Fatal(err)
		}
		// Parsing and local answers: allocations grow with the input, never
		// with what it claims.
		allocs := testing.AllocsPerRun(1, func() {
			if req, _ := parseQuery(b); req != nil {
				e.s.answerLocal(req)
			}
		})
		if max := 64 + 2*float64(len(b)); allocs > max {
			t.Fatalf("%d-byte datagram: %.0f allocations, want at most %.0f", len(b), allocs, max)
		}

		if _, err := e.client.Write(b); err != nil {
			return // e.g. larger than a datagram can be
		}
		expect := len(b) >= 12 && b[2]&0x80 == 0
		buf := make([]byte, 65535)
		if expect {
			e.client.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := e.client.Read(buf)
			if err != nil {
				t.Fatalf("no reply to a query: %v", err)
			}
			if n < 2 || buf[0] != b[0] || buf[1] != b[1] {
				t.Fatalf("reply ID %x, query ID %x", buf[:min(n, 2)], b[:2])
			}
		}
		// Nothing else may come back: the next reply is the sentinel's.
		id := uint16(b2(b)) ^ 0x5a5a
		e.client.Write(sentinel(id))
		e.client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := e.client.Read(buf)
		if err != nil {
			t.Fatalf("server stopped answering: %v", err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil || r.Id != id || len(r.Answer) != 1 {
			t.Fatalf("expected the sentinel's answer, got %v (%v)", r, err)
		}
		if name := e.leaked.Load(); name != nil {
			t.Fatalf("forwarded a .vm name upstream: %q", *name)
		}
	})
}

func b2(b []byte) uint16 {
	if len(b) < 2 {
		return 0
	}
	return uint16(b[0])<<8 | uint16(b[1])
}
