package vms

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

// freePort returns a port free on 127.0.0.1 for proto right now.
func freePort(t *testing.T, proto string) int {
	t.Helper()
	if proto == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The forwarder against a "guest" on 127.0.0.2 (the guest's address is
// just an address the host reaches): TCP both ways with half-close, UDP
// replies to the right client, and close ends live connections.
func TestProxyTCPAndUDP(t *testing.T) {
	guest, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	go func() {
		for {
			c, err := guest.Accept()
			if err != nil {
				return
			}
			go func() { // upper-cases until the client half-closes
				b, _ := io.ReadAll(c)
				c.Write([]byte(strings.ToUpper(string(b))))
				c.Close()
			}()
		}
	}()
	gp := guest.Addr().(*net.TCPAddr).Port
	px, err := listenForward(api.ForwardSpec{Addr: "127.0.0.1", HostPort: freePort(t, "tcp"), GuestPort: gp, Proto: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	px.serve("127.0.0.2")
	c, err := net.Dial("tcp", px.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello through the forward"))
	c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "HELLO THROUGH THE FORWARD" {
		t.Fatalf("tcp forward returned %q", got)
	}

	ug, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ug.Close()
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := ug.ReadFrom(b)
			if err != nil {
				return
			}
			ug.WriteTo([]byte("echo "+string(b[:n])), from)
		}
	}()
	up, err := listenForward(api.ForwardSpec{Addr: "127.0.0.1", HostPort: freePort(t, "udp"), GuestPort: ug.LocalAddr().(*net.UDPAddr).Port, Proto: "udp"})
	if err != nil {
		t.Fatal(err)
	}
	up.serve("127.0.0.2")
	for i := range 2 { // two clients, each gets its own replies
		uc, err := net.Dial("udp", up.pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		msg := "ping " + strconv.Itoa(i)
		uc.Write([]byte(msg))
		uc.SetReadDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 100)
		n, err := uc.Read(b)
		if err != nil || string(b[:n]) != "echo "+msg {
			t.Fatalf("udp client %d got %q, %v", i, b[:n], err)
		}
		uc.Close()
	}

	// close ends a connection in progress.
	c, err = net.Dial("tcp", px.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // accepted and dialled through
	done := make(chan struct{})
	go func() { px.close(); up.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not end a live connection")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after close")
	}
	c.Close()
}

// A host port in use is refused, naming the process that holds it.
func TestForwardBusyPortNamesTheHolder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = listenForward(api.ForwardSpec{Addr: "127.0.0.1", HostPort: port, GuestPort: 80, Proto: "tcp"})
	var ae *api.Error
	if err == nil || !errors.As(err, &ae) || ae.Code != api.CodeConflict || !strings.Contains(err.Error(), "in use by") ||
		!strings.Contains(err.Error(), "vms.test") {
		t.Fatalf("busy port: err = %v, want a conflict naming this test binary", err)
	}
	// bindFree takes the next free port instead.
	px := bindFree(port)
	if px == nil || px.spec.HostPort == port || px.spec.GuestPort != port {
		t.Fatalf("bindFree(%d) = %+v", port, px)
	}
	px.close()
}
