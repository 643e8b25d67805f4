package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

const (
	// noHostPoll is how often a virtio-serial port is re-read while no
	// host is connected: such reads return EOF at once, so without a
	// pause the loop would spin.
	noHostPoll = 50 * time.Millisecond
	// openRetryMax caps the back-off while the port does not exist (yet).
	openRetryMax = time.Second
)

// Run serves every guest channel until ctx ends: the virtio-serial port
// named proto.SerialPortName and, where the kernel has it, vsock.
func (s *Server) Run(ctx context.Context) {
	go s.serveVsock(ctx)
	s.serveChannel(ctx, openSerialPort)
}

// serveChannel serves a channel that outlives host connections (the
// virtio-serial port): open it, serve sessions, reopen after each one so
// that writes stuck on a vanished host are abandoned with the old handle.
func (s *Server) serveChannel(ctx context.Context, open func() (io.ReadWriteCloser, error)) {
	wait := noHostPoll
	var lastErr string
	for ctx.Err() == nil {
		ch, err := open()
		if err != nil {
			if err.Error() != lastErr {
				s.log().Warn("guest channel unavailable", "err", err)
				lastErr = err.Error()
			}
			sleepCtx(ctx, wait)
			wait = min(2*wait, openRetryMax)
			continue
		}
		wait, lastErr = noHostPoll, ""
		if err := s.servePort(ctx, ch); err != nil && ctx.Err() == nil {
			s.log().Warn("guest channel session ended", "err", err)
			sleepCtx(ctx, noHostPoll)
		}
	}
}

// servePort waits on an open port for a host's HELLO (a read returns EOF
// while no host is connected), then serves that session.
func (s *Server) servePort(ctx context.Context, ch io.ReadWriteCloser) error {
	stop := context.AfterFunc(ctx, func() { ch.Close() })
	defer stop()
	br := bufio.NewReader(ch)
	for {
		nonce, err := proto.ScanForLine(br, proto.HelloPrefix)
		if errors.Is(err, io.EOF) {
			if !sleepCtx(ctx, noHostPoll) {
				ch.Close()
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			ch.Close()
			return fmt.Errorf("wait for hello: %w", err)
		}
		return s.serveSession(ctx, ch, br, nonce)
	}
}

// openSerialPort opens the virtio-serial port the host named for us.
func openSerialPort() (io.ReadWriteCloser, error) {
	dev, err := findSerialPort("/sys/class/virtio-ports", proto.SerialPortName)
	if err != nil {
		return nil, err
	}
	return os.OpenFile(dev, os.O_RDWR|unix.O_NOCTTY, 0)
}

// findSerialPort maps a port name to its device (/dev/vport0p1): the
// numbering depends on device order, the name does not.
func findSerialPort(sysDir, name string) (string, error) {
	names, _ := filepath.Glob(filepath.Join(sysDir, "*", "name"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(n)), nil
		}
	}
	return "", fmt.Errorf("no virtio-serial port named %s", name)
}

// serveVsock accepts host connections on proto.VsockPort, each its own
// session. Without vsock in the kernel it logs and returns.
func (s *Server) serveVsock(ctx context.Context) {
	ln, err := listenVsock(proto.VsockPort)
	if err != nil {
		s.log().Info("vsock unavailable", "err", err)
		return
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	for {
		conn, err := acceptVsock(ln)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return
			}
			// Transient (ECONNABORTED, EMFILE): keep listening.
			s.log().Warn("vsock accept failed", "err", err)
			sleepCtx(ctx, noHostPoll)
			continue
		}
		go s.ServeConn(ctx, conn)
	}
}

// listenVsock returns a non-blocking listening socket as an *os.File, so
// that accepts wait in Go's poller and Close interrupts them.
func listenVsock(port uint32) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock socket: %w", err)
	}
	addr := &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}
	if err := unix.Bind(fd, addr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock bind port %d: %w", port, err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock listen: %w", err)
	}
	return os.NewFile(uintptr(fd), "vsock-listener"), nil
}

func acceptVsock(ln *os.File) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		return !errors.Is(aerr, unix.EAGAIN)
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	return os.NewFile(uintptr(nfd), "vsock"), nil
}

// sleepCtx sleeps for d and reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
