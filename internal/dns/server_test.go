package dns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a fake resolver on loopback: example.test has an address,
// everything else is NXDOMAIN.
func upstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if strings.EqualFold(r.Question[0].Name, "example.test.") && r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("example.test. 60 IN A 192.0.2.10")
			m.Answer = []dns.RR{rr}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// blackhole reads queries and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

func startServer(t *testing.T, ups ...string) *Server {
	t.Helper()
	return startServerWith(t, 400*time.Millisecond, ups...)
}

func startServerWith(t *testing.T, timeout time.Duration, ups ...string) *Server {
	t.Helper()
	s := &Server{
		Lookup: func(name string) (netip.Addr, bool) {
			if name == "dev" {
				return netip.MustParseAddr("10.77.0.2"), true
			}
			return netip.Addr{}, false
		},
		Upstreams: func() ([]string, error) { return ups, nil },
		Timeout:   timeout,
	}
	if err := s.Start(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func query(t *testing.T, s *Server, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: proto, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, s.Addr().String())
	if err != nil {
		t.Fatalf("%s %s %s: %v", proto, name, dns.TypeToString[qtype], err)
	}
	return r
}

func TestVMNames(t *testing.T) {
	s := startServer(t, upstream(t))
	for _, proto := range []string{"udp", "tcp"} {
		r := query(t, s, proto, "DEV.vm.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
			t.Fatalf("%s A dev.vm: %v", proto, r)
		}
		if a := r.Answer[0].(*dns.A); a.A.String() != "10.77.0.2" || a.Hdr.Ttl != TTL {
			t.Errorf("%s A dev.vm = %v", proto, a)
		}
	}
	// The name exists without IPv6: NODATA, with the SOA for negative caching.
	r := query(t, s, "udp", "dev.vm.", dns.TypeAAAA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("AAAA dev.vm: %v", r)
	}
	for _, name := range []string{"nope.vm.", "a.dev.vm."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r := query(t, s, "udp", name, qt)
			if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 || len(r.Ns) != 1 {
				t.Errorf("%s %s: rcode %s, %v", dns.TypeToString[qt], name, dns.RcodeToString[r.Rcode], r)
			}
		}
	}
	if r := query(t, s, "udp", "vm.", dns.TypeSOA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("SOA vm.: %v", r)
	}
}

func TestForwarding(t *testing.T) {
	s := startServer(t, upstream(t))
	for _, proto := range []string{"udp", "tcp"} {
		r := query(t, s, proto, "example.test.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.10" {
			t.Errorf("%s forwarded A: %v", proto, r)
		}
		if r := query(t, s, proto, "missing.test.", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("%s forwarded NXDOMAIN became %s", proto, dns.RcodeToString[r.Rcode])
		}
	}
	// A silent first upstream costs part of the budget, then the next answers.
	s = startServer(t, blackhole(t), upstream(t))
	if r := query(t, s, "udp", "example.test.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("failover: %v", r)
	}
}

func TestForwardingTimeout(t *testing.T) {
	s := startServer(t, blackhole(t), blackhole(t))
	start := time.Now()
	r := query(t, s, "udp", "example.test.", dns.TypeA)
	took := time.Since(start)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if took > 1500*time.Millisecond {
		t.Errorf("SERVFAIL after %s, want about the 400ms budget", took)
	}
	// The .vm zone does not depend on upstreams.
	if r := query(t, s, "udp", "dev.vm.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("dev.vm with dead upstreams: %v", r)
	}
}

func TestStartErrors(t *testing.T) {
	held, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := netip.MustParseAddrPort(held.LocalAddr().String())
	s := &Server{Lookup: func(string) (netip.Addr, bool) { return netip.Addr{}, false },
		Upstreams: func() ([]string, error) { return []string{"127.0.0.1:53"}, nil }}
	err = s.Start(addr)
	want := fmt.Sprintf("udp port %d on 127.0.0.1 is in use by pid %d", addr.Port(), os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Start on a held port = %v, want %q", err, want)
	}
	held.Close()

	// No upstream resolvers: refused before anything is bound.
	s.Upstreams = func() ([]string, error) { return HostUpstreams(writeConf(t, "# nothing\n")) }
	err = s.Start(addr)
	if err == nil || !strings.Contains(err.Error(), "no upstream DNS resolvers") {
		t.Fatalf("Start without upstreams = %v", err)
	}
	pc, err := net.ListenPacket("udp4", addr.String())
	if err != nil {
		t.Fatalf("port left bound after a failed start: %v", err)
	}
	pc.Close()
}

func writeConf(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostUpstreams(t *testing.T) {
	got, err := HostUpstreams(writeConf(t, "# c\nsearch lan\nnameserver 192.0.2.1\nnameserver  2001:db8::1\nnameserver 10.77.0.1\noptions edns0\n"),
		netip.MustParseAddr("10.77.0.1"))
	if err != nil || strings.Join(got, ",") != "192.0.2.1:53,[2001:db8::1]:53" {
		t.Errorf("HostUpstreams = %v %v", got, err)
	}
	// Only resolved's stub: its real upstreams are used instead.
	old := ResolvedConf
	t.Cleanup(func() { ResolvedConf = old })
	ResolvedConf = writeConf(t, "nameserver 198.51.100.7\n")
	got, err = HostUpstreams(writeConf(t, "nameserver 127.0.0.53\noptions edns0 trust-ad\n"))
	if err != nil || strings.Join(got, ",") != "198.51.100.7:53" {
		t.Errorf("behind resolved's stub: %v %v", got, err)
	}
	if _, err := HostUpstreams(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing resolv.conf is not an error")
	}
}

// A name Refuse keeps from its client is answered REFUSED over both
// transports without asking an upstream (a black hole here, which would
// turn a forward into SERVFAIL); `.vm` names are still answered.
func TestRefuseAnswersWithoutForwarding(t *testing.T) {
	s := &Server{
		Lookup: func(name string) (netip.Addr, bool) {
			return netip.MustParseAddr("10.77.0.2"), name == "dev"
		},
		Upstreams: func() ([]string, error) { return []string{blackhole(t)}, nil },
		Timeout:   300 * time.Millisecond,
		Refuse: func(client netip.Addr, name string) bool {
			return client.IsLoopback() && name == "secret.example."
		},
	}
	if err := s.Start(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, proto := range []string{"udp", "tcp"} {
		if r := query(t, s, proto, "secret.example.", dns.TypeA); r.Rcode != dns.RcodeRefused {
			t.Errorf("%s: refused name answered %s", proto, dns.RcodeToString[r.Rcode])
		}
		if r := query(t, s, proto, "other.example.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s: a name not refused was not forwarded (%s)", proto, dns.RcodeToString[r.Rcode])
		}
		if r := query(t, s, proto, "dev.vm.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s: dev.vm: %v", proto, r)
		}
	}
}
