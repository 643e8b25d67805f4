package fakefc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// vsockDevice emulates Firecracker's hybrid vsock host side: the uds is
// bound at PUT /vsock; a connection sends "CONNECT <port>\n" and gets
// "OK <host port>\n" when a guest process listens on that port, or is
// closed when none does (before boot, nothing does).
type vsockDevice struct {
	ln   *net.UnixListener
	path string

	mu       sync.Mutex
	booted   bool
	paused   bool // vCPUs stopped: no guest process accepts
	noAgent  bool
	agentAt  time.Time // when the fake agent starts listening
	hostPort uint32
}

func listenVsock(_ *server, path string) (*vsockDevice, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // Firecracker leaves the uds behind
	d := &vsockDevice{ln: ul, path: path, hostPort: 1 << 30}
	go d.accept()
	return d, nil
}

func (d *vsockDevice) close() { d.ln.Close() }

func (d *vsockDevice) boot(cfg config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.booted, d.noAgent = true, cfg.noAgent
	d.agentAt = time.Now().Add(cfg.agentDelay)
}

func (d *vsockDevice) setPaused(p bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused = p
}

// listening reports whether a guest process accepts on port now, and
// allocates the host-side port number Firecracker would report.
func (d *vsockDevice) listening(port uint32) (uint32, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.booted || d.paused || d.noAgent || port != proto.VsockPort || time.Now().Before(d.agentAt) {
		return 0, false
	}
	d.hostPort++
	return d.hostPort, true
}

func (d *vsockDevice) accept() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		go d.serve(c)
	}
}

func (d *vsockDevice) serve(c net.Conn) {
	defer c.Close()
	line, err := readLine(c, 32) // Firecracker's limit for the command
	if err != nil {
		return
	}
	verb, arg, _ := strings.Cut(line, " ")
	port, err := strconv.ParseUint(arg, 10, 32)
	if !strings.EqualFold(verb, "CONNECT") || err != nil {
		return
	}
	hp, ok := d.listening(uint32(port))
	if !ok {
		return // no listener: Firecracker just closes
	}
	if _, err := fmt.Fprintf(c, "OK %d\n", hp); err != nil {
		return
	}
	fakeAgent(c)
}

// fakeAgent answers banger's channel handshake, then echoes bytes back so
// that tests can see the stream carries data both ways.
func fakeAgent(c net.Conn) {
	line, err := readLine(c, 256)
	if err != nil || !strings.HasPrefix(line, proto.HelloPrefix) {
		return
	}
	nonce := strings.TrimPrefix(line, proto.HelloPrefix)
	if _, err := fmt.Fprintf(c, "%s%s fake\n", proto.ReadyPrefix, nonce); err != nil {
		return
	}
	io.Copy(c, c)
}

// readLine reads byte by byte so that nothing after the line is consumed.
func readLine(r io.Reader, max int) (string, error) {
	var b strings.Builder
	one := make([]byte, 1)
	for b.Len() <= max {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(one[0])
	}
	return "", errors.New("line too long")
}
