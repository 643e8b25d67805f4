package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// FuzzGuestSession feeds arbitrary bytes, as a guest would write them
// after a correct handshake, to the host's session (ping guard, yamux,
// reply reading) while the host pings. What must hold: no panic; the
// ping returns by its deadline whatever the guest sent; the
// session ends when the guest closes the channel; afterwards no goroutine is left
// behind; and the host's heap stays within a bound whatever the bytes
// claim (a guest cannot make the host hold more than it is sent plus a
// fixed amount).
func FuzzGuestSession(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		runtime.GC()
		base := runtime.NumGoroutine()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)

		host, guest := connPair(t)
		pinged := make(chan struct{})
		go func() {
			br := bufio.NewReader(guest)
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			nonce := strings.TrimPrefix(strings.TrimSpace(line), proto.HelloPrefix)
			fmt.Fprintf(guest, "%s%s fuzz\n", proto.ReadyPrefix, nonce)
			// Skip the host's HELLO copies, then wait for its GoAway and the
			// ping stream's opening frame, so that b meets an open stream 1.
			for {
				p, err := br.Peek(1)
				if err != nil {
					return
				}
				if p[0] != 'B' {
					break
				}
				br.ReadString('\n')
			}
			if _, err := io.ReadFull(br, make([]byte, 2*yamuxHeader)); err != nil {
				return
			}
			go io.Copy(io.Discard, br) // the host's writes never back up
			guest.Write(b)
			<-pinged
			guest.(*net.UnixConn).CloseWrite()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := Connect(ctx, host)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		pstart := time.Now()
		c.Ping(pctx) // any outcome but a late one: the bytes decide
		pcancel()
		if d := time.Since(pstart); d > 2*time.Second {
			t.Fatalf("a ping with a 10ms deadline returned after %s", d)
		}
		close(pinged)
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the session outlived the guest's channel by 5s")
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 32<<20+8*int64(len(b)) {
			t.Fatalf("%d guest bytes: host heap grew by %d MiB", len(b), grew>>20)
		}
		c.Close()
		host.Close()
		guest.Close()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base+1 {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("%d goroutines left behind:\n%s", runtime.NumGoroutine()-base, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(time.Millisecond)
		}
	})
}
