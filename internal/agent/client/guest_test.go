package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// connPair is a connected unix socket pair: host end, guest end.
func connPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "chan")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	t.Cleanup(func() { conns[0].Close(); conns[1].Close() })
	return conns[0], conns[1]
}

// guestHandshake plays the agent's side of the handshake and returns a
// reader that skips the host's repeated HELLO lines before yamux starts.
func guestHandshake(conn net.Conn) (io.Reader, error) {
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	nonce := strings.TrimPrefix(strings.TrimSpace(line), proto.HelloPrefix)
	if _, err := fmt.Fprintf(conn, "%s%s test-agent\n", proto.ReadyPrefix, nonce); err != nil {
		return nil, err
	}
	return &helloSkipper{r: br}, nil
}

type helloSkipper struct {
	r       *bufio.Reader
	started bool
}

func (h *helloSkipper) Read(p []byte) (int, error) {
	for !h.started {
		b, err := h.r.Peek(1)
		if err != nil {
			return 0, err
		}
		if b[0] != 'B' {
			h.started = true
			break
		}
		if _, err := h.r.ReadString('\n'); err != nil {
			return 0, err
		}
	}
	return h.r.Read(p)
}

type rwc struct {
	io.Reader
	net.Conn
}

func (c rwc) Read(p []byte) (int, error) { return c.Reader.Read(p) }

// fakeGuest connects a host Client to a guest yamux session that answers
// pings; the test drives the guest session.
func fakeGuest(t testing.TB) (*Client, *yamux.Session) {
	t.Helper()
	host, guest := connPair(t)
	type res struct {
		s   *yamux.Session
		err error
	}
	gs := make(chan res, 1)
	go func() {
		r, err := guestHandshake(guest)
		if err != nil {
			gs <- res{nil, err}
			return
		}
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		// A hostile guest ignores the host's GoAway: it never sees it.
		s, err := yamux.Server(rwc{dropGoAway(r), guest}, cfg)
		gs <- res{s, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g := <-gs
	if g.err != nil {
		t.Fatal(g.err)
	}
	t.Cleanup(func() { g.s.Close() })
	go servePings(g.s)
	return c, g.s
}

func servePings(s *yamux.Session) {
	for {
		st, err := s.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer st.Close()
			var req proto.Request
			if proto.ReadLine(st, &req) != nil {
				return
			}
			proto.WriteLine(st, proto.Response{OK: true, Info: &proto.Info{Version: "test-agent"}})
		}()
	}
}

// dropGoAway removes yamux GoAway frames (type 3) from r.
func dropGoAway(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		hdr := make([]byte, yamuxHeader)
		for {
			if _, err := io.ReadFull(r, hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if hdr[1] == 3 {
				continue
			}
			if _, err := pw.Write(hdr); err != nil {
				return
			}
			if hdr[1] == yamuxTypeData {
				if _, err := io.CopyN(pw, r, int64(binary.BigEndian.Uint32(hdr[8:]))); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}
	}()
	return pr
}
