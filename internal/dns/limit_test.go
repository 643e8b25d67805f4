package dns

import (
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// slowUpstream answers every query with an address after delay, from two
// goroutines whatever the load (so the test's own goroutines stay fixed).
func slowUpstream(t *testing.T, delay time.Duration) (addr string, seen *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	type item struct {
		due  time.Time
		to   net.Addr
		data []byte
	}
	q := make(chan item, 100000)
	seen = new(atomic.Int64)
	go func() {
		defer close(q)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			seen.Add(1)
			q <- item{time.Now().Add(delay), from, append([]byte(nil), buf[:n]...)}
		}
	}()
	go func() {
		for it := range q {
			time.Sleep(time.Until(it.due))
			req := new(dns.Msg)
			if req.Unpack(it.data) != nil {
				continue
			}
			m := new(dns.Msg)
			m.SetReply(req)
			rr, _ := dns.NewRR(req.Question[0].Name + " 60 IN A 192.0.2.10")
			m.Answer = []dns.RR{rr}
			b, _ := m.Pack()
			pc.WriteTo(b, it.to)
		}
	}()
	return pc.LocalAddr().String(), seen
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A guest flooding the server with queries for names the (slow) upstream
// must resolve gets SERVFAIL beyond its share; goroutines and sockets stay
// bounded, and another client still resolves.
func TestFloodFromOneSourceIsBounded(t *testing.T) {
	up, seen := slowUpstream(t, 700*time.Millisecond)
	s := startServerWith(t, 3*time.Second, up)
	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	flood, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	const n = 3000
	var servfails, answers atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 65535)
		for {
			flood.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, _, err := flood.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:k]) != nil {
				continue
			}
			switch m.Rcode {
			case dns.RcodeServerFailure:
				servfails.Add(1)
			case dns.RcodeSuccess:
				answers.Add(1)
			}
		}
	}()
	var maxG, maxFD atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sampler
		defer wg.Done()
		for {
			if g := int64(runtime.NumGoroutine()); g > maxG.Load() {
				maxG.Store(g)
			}
			if f := int64(openFDs(t)); f > maxFD.Load() {
				maxFD.Store(f)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	dst, _ := net.ResolveUDPAddr("udp4", s.Addr().String())
	for i := range n {
		m := new(dns.Msg)
		m.SetQuestion("flood.test.", dns.TypeA)
		m.Id = uint16(i)
		b, _ := m.Pack()
		flood.WriteTo(b, dst)
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // stay under the socket buffers
		}
	}
	// Meanwhile another client resolves, through the same slow upstream.
	start := time.Now()
	if r := query(t, s, "udp", "other.test.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("another client during the flood: %v", r)
	}
	if r := query(t, s, "udp", "dev.vm.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("dev.vm during the flood: %v", r)
	}
	t.Logf("other client answered in %s", time.Since(start))
	<-readerDone
	close(stop)
	wg.Wait()

	t.Logf("flood: %d answers, %d SERVFAIL, %d reached upstream; goroutines %d -> max %d, fds %d -> max %d",
		answers.Load(), servfails.Load(), seen.Load(), baseG, maxG.Load(), baseFD, maxFD.Load())
	if g := maxG.Load() - int64(baseG); g > DefaultPerSource+24 {
		t.Errorf("goroutines grew by %d during the flood, want at most about the per-source bound %d", g, DefaultPerSource)
	}
	if f := maxFD.Load() - int64(baseFD); f > socketsPerUpstream+DefaultPerSource+4 {
		t.Errorf("open fds grew by %d during the flood", f)
	}
	if servfails.Load() == 0 || answers.Load() == 0 {
		t.Errorf("want both SERVFAILs beyond the bound and real answers: %d / %d", servfails.Load(), answers.Load())
	}
	if seen.Load() > n/2 {
		t.Errorf("%d of %d flood queries reached the upstream", seen.Load(), n)
	}
}

// Replies find their own query: IDs are rewritten per upstream socket and
// restored for the client, also when many queries share a socket.
func TestPooledForwardsKeepIDs(t *testing.T) {
	up, _ := slowUpstream(t, 50*time.Millisecond)
	s := startServerWith(t, 3*time.Second, up)
	var wg sync.WaitGroup
	for i := range DefaultPerSource {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := new(dns.Msg)
			name := dns.Fqdn(string(rune('a'+i%26)) + "x" + string(rune('a'+i/26)) + ".test")
			m.SetQuestion(name, dns.TypeA)
			m.Id = uint16(1000 + i)
			c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
			r, _, err := c.Exchange(m, s.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			if r.Id != m.Id || len(r.Answer) != 1 || r.Answer[0].Header().Name != name {
				t.Errorf("query %d %s got %v", m.Id, name, r)
			}
		}()
	}
	wg.Wait()
	s.pool.mu.Lock()
	open := len(s.pool.all)
	s.pool.mu.Unlock()
	if open > socketsPerUpstream {
		t.Errorf("%d upstream sockets for one upstream", open)
	}
}

// TCP connections beyond the per-source bound are closed on accept; the
// ones inside it keep working.
func TestTCPConnectionsPerSource(t *testing.T) {
	s := startServer(t, blackhole(t))
	var conns []*dns.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range maxTCPPerSource {
		c, err := dns.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	ask := func(c *dns.Conn) error {
		m := new(dns.Msg)
		m.SetQuestion("dev.vm.", dns.TypeA)
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := c.WriteMsg(m); err != nil {
			return err
		}
		_, err := c.ReadMsg()
		return err
	}
	extra, err := dns.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := ask(extra); err == nil {
		t.Errorf("connection %d from one address was served", maxTCPPerSource+1)
	}
	for i, c := range conns {
		if err := ask(c); err != nil {
			t.Errorf("connection %d: %v", i, err)
		}
	}
	conns[0].Close()
	conns = conns[1:]
	time.Sleep(50 * time.Millisecond)
	again, err := dns.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := ask(again); err != nil {
		t.Errorf("a freed slot is not reused: %v", err)
	}
}
