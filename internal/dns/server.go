// Package dns is banger's DNS server, listening on the bridge's gateway
// address: it answers A records for `<name>.vm` of running VMs, NXDOMAIN
// for every other `.vm` name, and forwards all other queries to the host's
// upstream resolvers (read from the system's resolver configuration).
// Guests use it as their only resolver; the host reaches it directly or
// through systemd-resolved's routing of `.vm`.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// TTL of `.vm` answers: short, because VMs come and go.
const TTL = 5

// Server is one DNS server. Set the fields, then Start.
type Server struct {
	// Lookup maps a lower-case VM name to its address; ok is false for
	// names that are not running VMs.
	Lookup func(name string) (addr netip.Addr, ok bool)
	// Upstreams returns the resolvers ("host:port") to forward to.
	Upstreams func() ([]string, error)
	// Timeout bounds one forwarded query over all upstreams (default 4 s);
	// when it runs out the client gets SERVFAIL.
	Timeout time.Duration
	// PerSource and MaxInFlight bound forwarded queries in flight per
	// client address and in total (defaults DefaultPerSource and
	// DefaultMaxInFlight); beyond them a query is answered SERVFAIL.
	PerSource, MaxInFlight int
	Log                    *slog.Logger
	// OnAnswer, when set, sees every forwarded answer before the client
	// does (a guest's domain rules let it reach what the name resolved
	// to, so the addresses must be allowed before it connects).
	OnAnswer func(client netip.Addr, resp *dns.Msg)
	// Refuse, when set, says a client may not have a name resolved
	// upstream (an isolated guest): it gets REFUSED, nothing is
	// forwarded.
	Refuse func(client netip.Addr, name string) bool

	mu   sync.Mutex
	addr netip.AddrPort
	udp  *net.UDPConn
	tcp  *dns.Server
	lim  *limiter       // forwarded queries in flight
	pool *upstreamPool  // UDP upstream sockets
	wg   sync.WaitGroup // the UDP loop and its forwards
}

// Start binds UDP and TCP on addr and serves in the background. Nothing
// is left bound when it fails.
func (s *Server) Start(addr netip.AddrPort) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp != nil {
		return fmt.Errorf("dns server already listening on %s", s.addr)
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Timeout == 0 {
		s.Timeout = 4 * time.Second
	}
	if s.PerSource == 0 {
		s.PerSource = DefaultPerSource
	}
	if s.MaxInFlight == 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
	if _, err := s.Upstreams(); err != nil {
		return err
	}
	pc, ln, addr, err := listenBoth(addr)
	if err != nil {
		return err
	}
	s.addr = addr
	s.lim = newLimiter(s.PerSource, s.MaxInFlight)
	s.pool = newUpstreamPool()
	s.udp = pc.(*net.UDPConn)
	s.tcp = &dns.Server{Listener: &limitListener{ln, newLimiter(maxTCPPerSource, maxTCPConns)}, Handler: s, ReadTimeout: 5 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serveUDP(s.udp)
	}()
	go func(srv *dns.Server) {
		if err := srv.ActivateAndServe(); err != nil {
			s.Log.Warn("dns server stopped", "err", err)
		}
	}(s.tcp)
	return nil
}

// Addr is where the server listens (zero when it does not).
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops serving and releases the ports.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return
	}
	s.udp.Close()
	if err := s.tcp.Shutdown(); err != nil {
		s.tcp.Listener.Close() // not started yet
	}
	s.pool.close() // forwards in flight fail at once
	s.wg.Wait()
	s.udp, s.tcp, s.addr = nil, nil, netip.AddrPort{}
}

// bindError explains a failed bind, naming who holds the port.
func bindError(proto string, addr netip.AddrPort, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		holder := PortHolder(proto, int(addr.Port()))
		if holder == "" {
			holder = "another socket"
		}
		return fmt.Errorf("dns: %s port %d on %s is in use by %s: stop it, or set [network] dns_port in config.toml to a free port",
			proto, addr.Port(), addr.Addr(), holder)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("dns: %s is not an address of this host (is the bridge up?): %w", addr.Addr(), err)
	}
	return fmt.Errorf("dns: listen on %s/%s: %w", addr, proto, err)
}

func soa() dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: "vm.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: TTL},
		Ns: "ns.vm.", Mbox: "hostmaster.vm.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: TTL}
}

// ServeDNS answers one query that arrived over TCP (UDP has its own
// loop, serveUDP).
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if m := s.answerLocal(req); m != nil {
		w.WriteMsg(m)
		return
	}
	src := addrOf(w.RemoteAddr())
	if m := s.refused(src, req); m != nil {
		w.WriteMsg(m)
		return
	}
	if !s.lim.acquire(src) {
		w.WriteMsg(servfail(req))
		return
	}
	defer s.lim.release(src)
	w.WriteMsg(s.answered(src, s.forward(req, w.LocalAddr().Network())))
}

// refused is REFUSED for a name Refuse keeps from client, nil otherwise.
func (s *Server) refused(client netip.Addr, req *dns.Msg) *dns.Msg {
	if s.Refuse == nil || !s.Refuse(client, req.Question[0].Name) {
		return nil
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeRefused)
	return m
}

// answerLocal answers what needs no upstream: malformed queries and the
// `.vm` zone. nil means the query is to be forwarded.
func (s *Server) answerLocal(req *dns.Msg) *dns.Msg {
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	}
	if name := strings.ToLower(req.Question[0].Name); isVMName(name) {
		return s.answerVM(req, name)
	}
	return nil
}

// isVMName says whether a lower-case presentation name is in `.vm`.
func isVMName(name string) bool {
	return name == "vm." || strings.HasSuffix(name, ".vm.")
}

// answerVM is authoritative for `.vm`: A for running VMs, NODATA for
// other types of a known name, NXDOMAIN for the rest.
func (s *Server) answerVM(req *dns.Msg, name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	q := req.Question[0]
	if name == "vm." {
		if q.Qtype == dns.TypeSOA {
			m.Answer = []dns.RR{soa()}
		} else {
			m.Ns = []dns.RR{soa()}
		}
		return m
	}
	label := strings.TrimSuffix(name, ".vm.")
	addr, ok := netip.Addr{}, false
	if !strings.Contains(label, ".") {
		addr, ok = s.Lookup(label)
	}
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa()}
	case (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY) && addr.Is4():
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: TTL}, A: addr.AsSlice()}}
	default: // AAAA and the rest: the name exists, without such records
		m.Ns = []dns.RR{soa()}
	}
	return m
}

// forward asks the upstreams in order, over the client's transport, until
// one answers or the time runs out (SERVFAIL).
func (s *Server) forward(req *dns.Msg, network string) *dns.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	ups, err := s.Upstreams()
	if err == nil {
		proto := "udp"
		if strings.HasPrefix(network, "tcp") {
			proto = "tcp"
		}
		for i, up := range ups {
			// Each upstream gets an equal share of what is left.
			share := time.Until(deadline(ctx)) / time.Duration(len(ups)-i)
			uctx, ucancel := context.WithTimeout(ctx, share)
			var resp *dns.Msg
			var xerr error
			if proto == "udp" {
				resp, xerr = s.pool.exchange(uctx, up, req)
			} else {
				// TCP (a client retrying a truncated answer) is rare: a
				// connection per query, bounded like every forward.
				c := &dns.Client{Net: proto, Timeout: share}
				resp, _, xerr = c.ExchangeContext(uctx, req, up)
			}
			ucancel()
			if xerr == nil {
				resp.Id = req.Id
				return resp
			}
			err = xerr
			if ctx.Err() != nil {
				break
			}
		}
	}
	s.Log.Debug("dns forward failed", "name", req.Question[0].Name, "err", err)
	return servfail(req)
}

// answered runs OnAnswer for a forwarded answer.
func (s *Server) answered(client netip.Addr, resp *dns.Msg) *dns.Msg {
	if s.OnAnswer != nil && resp.Rcode == dns.RcodeSuccess {
		s.OnAnswer(client, resp)
	}
	return resp
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// listenBoth binds UDP and TCP on addr. Port 0 (tests) lets UDP pick a
// port and TCP take the same one; when that TCP port is busy (an
// outgoing connection may hold it), it tries another few.
func listenBoth(addr netip.AddrPort) (net.PacketConn, net.Listener, netip.AddrPort, error) {
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp4", addr.String())
		if err != nil {
			return nil, nil, addr, bindError("udp", addr, err)
		}
		at := netip.AddrPortFrom(addr.Addr(), uint16(pc.LocalAddr().(*net.UDPAddr).Port))
		ln, err := net.Listen("tcp4", at.String())
		if err == nil {
			return pc, ln, at, nil
		}
		pc.Close()
		if addr.Port() != 0 || try == 9 {
			return nil, nil, at, bindError("tcp", at, err)
		}
	}
}
