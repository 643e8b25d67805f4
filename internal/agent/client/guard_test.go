package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Streams the guest opens are refused: 300 of them, each filled with
// 256 KiB, leave the host's heap where it was, and the channel works.
func TestGuestOpenedStreamsPinNoMemory(t *testing.T) {
	c, guest := fakeGuest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	chunk := bytes.Repeat([]byte("x"), 256<<10)
	var wg sync.WaitGroup
	var opened atomic.Int64
	for range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := guest.OpenStream()
			if err != nil {
				return
			}
			opened.Add(1)
			defer st.Close()
			st.SetWriteDeadline(time.Now().Add(5 * time.Second))
			st.Write(chunk)
		}()
	}
	waitTimeout(&wg, 10*time.Second)
	// A round trip after the flood: the host has read everything before it.
	if info, err := c.Ping(ctx); err != nil || info.Version != "test-agent" {
		t.Errorf("ping after the flood: %v %v", info, err)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("guest opened %d streams; host heap in use %d MiB -> %d MiB", opened.Load(), before.HeapInuse>>20, after.HeapInuse>>20)
	if grew > 16<<20 {
		t.Errorf("host heap grew by %d MiB after guest-opened streams", grew>>20)
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func pingFrame(id uint32) []byte {
	h := make([]byte, yamuxHeader)
	h[1] = yamuxTypePing
	binary.BigEndian.PutUint16(h[2:], yamuxFlagSYN)
	binary.BigEndian.PutUint32(h[8:], id)
	return h
}

// The guard passes a burst of pings, then one per refill, never touching
// data frames, even ones whose body looks like a ping.
func TestPingGuard(t *testing.T) {
	var in bytes.Buffer
	for i := range 100 {
		in.Write(pingFrame(uint32(i)))
	}
	data := make([]byte, yamuxHeader)
	binary.BigEndian.PutUint32(data[8:], 2*yamuxHeader)
	in.Write(data)
	in.Write(pingFrame(1000))
	in.Write(pingFrame(1001))
	in.Write(pingFrame(2000))
	now := time.Unix(100, 0)
	g := newPingGuard(&in, nil)
	g.now = func() time.Time { return now }
	var out bytes.Buffer
	buf := make([]byte, 7) // odd reads cross header boundaries
	for out.Len() < (pingBurst+1)*yamuxHeader+2*yamuxHeader {
		n, err := g.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
	}
	want := bytes.Buffer{}
	for i := range pingBurst {
		want.Write(pingFrame(uint32(i)))
	}
	want.Write(data)
	want.Write(pingFrame(1000))
	want.Write(pingFrame(1001))
	if !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Fatalf("guard passed\n%x\nwant\n%x", out.Bytes(), want.Bytes())
	}
	now = now.Add(time.Second / pingsPerSecond)
	rest, _ := io.ReadAll(g)
	if !bytes.Equal(rest, pingFrame(2000)) {
		t.Errorf("after a refill got %x", rest)
	}
}

// A guest flooding pings without reading the replies cannot make the
// host start a goroutine per ping.
func TestPingFloodIsBounded(t *testing.T) {
	host, guest := connPair(t)
	go func() {
		r, err := guestHandshake(guest)
		if err != nil {
			return
		}
		_ = r // never read: the host's replies back up
		var flood bytes.Buffer
		for i := range 50000 {
			flood.Write(pingFrame(uint32(i)))
		}
		guest.Write(flood.Bytes())
	}()
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peak := 0
	for range 100 {
		peak = max(peak, runtime.NumGoroutine()-base)
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("goroutines above base during a 50000-ping flood: %d", peak)
	if peak > pingBurst+32 {
		t.Errorf("%d goroutines during a ping flood", peak)
	}
}

// A guest that stops in the middle of a frame for the host's stream does
// not hold the host's request past its deadline (found by
// FuzzGuestSession: yamux reads a body holding the stream's lock, so the
// ping waited ~25 s for the keep-alive to fail).
func TestFrameCutShortDoesNotStallRequests(t *testing.T) {
	host, guest := connPair(t)
	go func() {
		r, err := guestHandshake(guest)
		if err != nil {
			return
		}
		// Wait for the host's GoAway and the ping stream's opening frame.
		if _, err := io.ReadFull(r, make([]byte, 2*yamuxHeader)); err != nil {
			return
		}
		go io.Copy(io.Discard, r)
		hdr := make([]byte, yamuxHeader)
		binary.BigEndian.PutUint16(hdr[2:], 2) // ACK
		binary.BigEndian.PutUint32(hdr[4:], 1) // stream 1: the ping
		binary.BigEndian.PutUint32(hdr[8:], 38)
		guest.Write(append(hdr, `{"ok":`...)) // 6 of 38 bytes, then silence
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Connect(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer pcancel()
	start := time.Now()
	_, err = c.Ping(pctx)
	if d := time.Since(start); err == nil || d > 2*time.Second {
		t.Errorf("ping over a stalled frame: %v after %s, want its 200ms deadline", err, d)
	}
}

// The guard drops the frames that open guest streams (SYN on data or
// window update, even stream id) with their bodies, and passes the
// host's own streams' frames and everything else untouched.
func TestGuardDropsGuestOpenedStreams(t *testing.T) {
	frame := func(typ byte, flags uint16, id uint32, body []byte) []byte {
		h := make([]byte, yamuxHeader, yamuxHeader+len(body))
		h[1] = typ
		binary.BigEndian.PutUint16(h[2:], flags)
		binary.BigEndian.PutUint32(h[4:], id)
		binary.BigEndian.PutUint32(h[8:], uint32(len(body)))
		if typ != yamuxTypeData {
			binary.BigEndian.PutUint32(h[8:], 256<<10) // a window update's delta
			return h
		}
		return append(h, body...)
	}
	var in, want bytes.Buffer
	for id := uint32(2); id <= 600; id += 2 {
		in.Write(frame(yamuxTypeWindowUpdate, yamuxFlagSYN, id, nil))
		in.Write(frame(yamuxTypeData, yamuxFlagSYN, id+1000, bytes.Repeat([]byte("x"), 1024)))
	}
	for _, f := range [][]byte{
		frame(yamuxTypeWindowUpdate, 2, 1, nil),               // ACK of the host's stream 1
		frame(yamuxTypeData, 0, 1, []byte(`{"ok":true}`)),     // its data
		frame(yamuxTypeData, 0, 2, []byte("no SYN, no open")), // yamux drops it itself
	} {
		in.Write(f)
		want.Write(f)
	}
	got, err := io.ReadAll(newPingGuard(&in, nil))
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("guard passed\n%x\nwant\n%x", got, want.Bytes())
	}
}
