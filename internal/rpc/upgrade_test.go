package rpc_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/rpc"
)

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReaderSize(nc, 64<<10) }

type session struct {
	ID string `json:"id"`
}

// echoUpgrade upgrades, then answers every line with "echo: <line>" until
// the client sends "bye" or goes away. It reports whether its context was
// cancelled before the stream ended.
func echoUpgrade(cancelledEarly chan<- bool) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		conn, br, err := c.Upgrade(session{ID: "s1"})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				break
			}
			if _, err := io.WriteString(conn, "echo: "+line); err != nil || line == "bye\n" {
				break
			}
		}
		if cancelledEarly != nil {
			cancelledEarly <- ctx.Err() != nil
		}
		return nil, rpc.ErrUpgraded
	}
}

// TestUpgradeEchoesBytesSentRightAfterResult sends stream bytes the moment
// the result line is read: the disconnect watcher must hand them over to
// the handler, not swallow them. Many rounds widen the race window.
func TestUpgradeEchoesBytesSentRightAfterResult(t *testing.T) {
	early := make(chan bool, 1)
	dial := serve(t, map[string]rpc.Handler{"exec": echoUpgrade(early)})
	for round := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := rpc.Start(ctx, dial, "exec", nil)
		if err != nil {
			t.Fatal(err)
		}
		var s session
		if err := c.Wait(ctx, nil, &s); err != nil || s.ID != "s1" {
			t.Fatalf("round %d: Wait = %+v, %v", round, s, err)
		}
		for i := range 3 {
			msg := fmt.Sprintf("r%d-%d\n", round, i)
			if _, err := io.WriteString(c, msg); err != nil {
				t.Fatalf("round %d: write: %v", round, err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := c.R.ReadString('\n')
			if err != nil || got != "echo: "+msg {
				t.Fatalf("round %d: echo = %q, %v; want %q", round, got, err, "echo: "+msg)
			}
		}
		io.WriteString(c, "bye\n")
		if got, _ := c.R.ReadString('\n'); got != "echo: bye\n" {
			t.Fatalf("round %d: bye echo = %q", round, got)
		}
		if <-early {
			t.Fatalf("round %d: handler context cancelled while the stream was live", round)
		}
		c.Close()
		cancel()
	}
}

// TestUpgradeKeepsBytesSentBeforeResult: bytes the client pipelines behind
// its request (e.g. stdin) reach the handler through the returned reader.
func TestUpgradeKeepsBytesSentBeforeResult(t *testing.T) {
	dial := serve(t, map[string]rpc.Handler{"exec": echoUpgrade(nil)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "exec", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "early\nbye\n"); err != nil {
		t.Fatal(err)
	}
	var s session
	if err := c.Wait(ctx, nil, &s); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c.R)
	if err != nil {
		t.Fatal(err)
	}
	if want := "echo: early\necho: bye\n"; string(rest) != want {
		t.Fatalf("stream = %q, want %q", rest, want)
	}
}

// TestConnReadSeesStreamBufferedWithResult: the server writes stream bytes
// straight after the result line, so the client's buffered reader holds
// them. Reading the Conn as a plain io.Reader (as vm run does) must not
// lose them.
func TestConnReadSeesStreamBufferedWithResult(t *testing.T) {
	const payload = "frame-data-that-follows-the-result"
	dial := serve(t, map[string]rpc.Handler{"exec": func(ctx context.Context, c *rpc.Call) (any, error) {
		conn, _, err := c.Upgrade(session{ID: "s2"})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		io.WriteString(conn, payload)
		return nil, rpc.ErrUpgraded
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "exec", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // let result and payload land together
	var s session
	if err := c.Wait(ctx, nil, &s); err != nil || s.ID != "s2" {
		t.Fatalf("Wait = %+v, %v", s, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var r io.Reader = c
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	if string(got) != payload {
		t.Fatalf("stream through Conn.Read = %q, want %q", got, payload)
	}
}

// TestUpgradeClientLeavesMidStream: after an upgrade the handler owns the
// connection; a client that leaves shows up as EOF on the reader.
func TestUpgradeClientLeavesMidStream(t *testing.T) {
	ended := make(chan string, 1)
	dial := serve(t, map[string]rpc.Handler{"exec": func(ctx context.Context, c *rpc.Call) (any, error) {
		conn, br, err := c.Upgrade(session{ID: "s3"})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		b, _ := io.ReadAll(br)
		ended <- string(b)
		return nil, rpc.ErrUpgraded
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "exec", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "partial input")
	c.Close()
	select {
	case got := <-ended:
		if !strings.HasPrefix(got, "partial input") {
			t.Fatalf("handler read %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not see the client leave")
	}
}
