package vms

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/banger-dev/banger/internal/api"
	bdns "github.com/banger-dev/banger/internal/dns"
)

// udpIdle ends a UDP forward's session with one client after this long
// without a datagram either way.
const udpIdle = 60 * time.Second

// proxy is one forward's listener in the daemon: a userspace forwarder
// (no privilege; the guest's address is reachable from the host). TCP
// connections are spliced (io.Copy between TCP sockets uses splice(2));
// UDP keeps a session (a socket to the guest) per client.
type proxy struct {
	spec api.ForwardSpec
	auto bool
	ln   net.Listener
	pc   net.PacketConn
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[io.Closer]bool
	done  bool
}

// listenForward binds a forward's host side; a port in use is an error
// naming its holder.
func listenForward(spec api.ForwardSpec) (*proxy, error) {
	addr := net.JoinHostPort(spec.Addr, strconv.Itoa(spec.HostPort))
	p := &proxy{spec: spec, conns: map[io.Closer]bool{}}
	var err error
	if spec.Proto == "udp" {
		p.pc, err = net.ListenPacket("udp", addr)
	} else {
		p.ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, bindError(spec, err)
	}
	return p, nil
}

func bindError(spec api.ForwardSpec, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		holder := bdns.PortHolder(spec.Proto, spec.HostPort)
		if holder == "" {
			holder = "another socket"
		}
		return api.Conflictf("host port %s:%d/%s is in use by %s: forward another host port (HOSTPORT:%d)",
			spec.Addr, spec.HostPort, spec.Proto, holder, spec.GuestPort)
	case errors.Is(err, syscall.EACCES):
		return api.Invalidf("host port %d/%s: ports below 1024 need privilege the daemon does not have: use one above 1023", spec.HostPort, spec.Proto)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return api.Invalidf("host address %s is not an address of this host", spec.Addr)
	}
	return fmt.Errorf("forward %s: %w", spec, err)
}

// serve forwards to guestIP in the background until close.
func (p *proxy) serve(guestIP string) {
	to := net.JoinHostPort(guestIP, strconv.Itoa(p.spec.GuestPort))
	p.wg.Add(1)
	if p.ln != nil {
		go p.serveTCP(to)
	} else {
		go p.serveUDP(to)
	}
}

func (p *proxy) track(c io.Closer, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && p.done {
		c.Close()
		return false
	}
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *proxy) serveTCP(to string) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			if !p.track(c, true) {
				return
			}
			defer p.track(c, false)
			g, err := net.DialTimeout("tcp", to, 5*time.Second)
			if err != nil {
				return // the client sees the connection close
			}
			defer g.Close()
			if !p.track(g, true) {
				return
			}
			defer p.track(g, false)
			splice(c.(*net.TCPConn), g.(*net.TCPConn))
		}()
	}
}

// splice copies both ways until both sides are done, passing on each
// half-close.
func splice(a, b *net.TCPConn) {
	done := make(chan struct{})
	go func() {
		io.Copy(b, a)
		b.CloseWrite()
		close(done)
	}()
	io.Copy(a, b)
	a.CloseWrite()
	<-done
}

func (p *proxy) serveUDP(to string) {
	defer p.wg.Done()
	type session struct {
		c    *net.UDPConn
		last time.Time
	}
	var mu sync.Mutex
	sessions := map[string]*session{}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		mu.Lock()
		s := sessions[from.String()]
		if s == nil {
			raddr, err := net.ResolveUDPAddr("udp", to)
			var c *net.UDPConn
			if err == nil {
				c, err = net.DialUDP("udp", nil, raddr)
			}
			if err != nil || !p.track(c, true) {
				mu.Unlock()
				continue
			}
			s = &session{c: c}
			sessions[from.String()] = s
			p.wg.Add(1)
			go func(key string, s *session) { // replies, until idle
				defer p.wg.Done()
				defer p.track(s.c, false)
				defer s.c.Close()
				rb := make([]byte, 64<<10)
				for {
					s.c.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := s.c.Read(rb)
					if err != nil {
						var ne net.Error
						timeout := errors.As(err, &ne) && ne.Timeout()
						mu.Lock()
						if timeout && time.Since(s.last) < udpIdle {
							mu.Unlock()
							continue
						}
						delete(sessions, key)
						mu.Unlock()
						return
					}
					p.pc.WriteTo(rb[:m], from)
				}
			}(from.String(), s)
		}
		s.last = time.Now()
		mu.Unlock()
		s.c.Write(buf[:n])
	}
}

// close stops the listener and every connection, and waits for them.
func (p *proxy) close() {
	p.mu.Lock()
	p.done = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
	} else {
		p.pc.Close()
	}
	p.wg.Wait()
}
