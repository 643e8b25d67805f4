package vms

import (
	"encoding/json"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// guestPair is a guest stream: the relay's end and the fake agent's.
func guestPair() (relayEnd, agentEnd net.Conn) { return net.Pipe() }

// The exit frame reaches the client only after beforeExit has run (vm
// run --rm deletes the VM there), and exactly once.
func TestRelayExecHoldsExitUntilBeforeExit(t *testing.T) {
	cli, cliFar := net.Pipe()
	g, agent := guestPair()
	var ran atomic.Int32
	r := &relay{stop: make(chan struct{}), interrupt: func() { g.Close() }}
	done := make(chan struct{})
	go func() {
		relayExec(cliFar, cliFar, g, func() { ran.Add(1) }, r)
		close(done)
	}()
	go func() {
		proto.WriteFrame(agent, proto.FrameStdout, []byte("hi\n"))
		proto.WriteFrame(agent, proto.FrameExit, []byte(`{"code":3}`))
	}()
	typ, p, err := proto.ReadFrame(cli)
	if err != nil || typ != proto.FrameStdout || string(p) != "hi\n" {
		t.Fatalf("first frame %d %q %v", typ, p, err)
	}
	typ, p, err = proto.ReadFrame(cli)
	if err != nil || typ != proto.FrameExit || string(p) != `{"code":3}` {
		t.Fatalf("exit frame %d %q %v", typ, p, err)
	}
	if ran.Load() != 1 {
		t.Fatalf("beforeExit ran %d times before the exit frame was read", ran.Load())
	}
	<-done
	if ran.Load() != 1 {
		t.Fatalf("beforeExit ran %d times", ran.Load())
	}
}

// An interrupted relay (daemon stop) ends a command that never exits: the
// guest stream is closed and the client gets exit 125 saying why.
func TestRelayExecInterruptedTellsTheClient(t *testing.T) {
	cli, cliFar := net.Pipe()
	g, agent := guestPair()
	go io.Copy(io.Discard, agent) // a guest that never answers
	var set relaySet
	var ran atomic.Int32
	r := &relay{what: "vm exec dev -- sleep", stop: make(chan struct{}), interrupt: func() {
		g.SetReadDeadline(time.Now())
		g.Close()
	}}
	set.add(r)
	done := make(chan struct{})
	go func() {
		relayExec(cliFar, cliFar, g, func() { ran.Add(1) }, r)
		close(done)
	}()
	if got := set.describe(); len(got) != 1 || got[0] != "vm exec dev -- sleep" {
		t.Fatalf("describe = %v", got)
	}
	set.interruptAll()
	typ, p, err := proto.ReadFrame(cli)
	if err != nil || typ != proto.FrameExit {
		t.Fatalf("frame %d %q %v", typ, p, err)
	}
	var st proto.ExitStatus
	if err := json.Unmarshal(p, &st); err != nil || st.Code != InterruptedExit || st.Error != ErrDaemonStopped {
		t.Fatalf("exit %+v %v", st, err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not end")
	}
	if ran.Load() != 1 {
		t.Fatalf("beforeExit ran %d times", ran.Load())
	}
	// A relay added after the stop is interrupted at once.
	late := &relay{stop: make(chan struct{}), interrupt: func() {}}
	set.add(late)
	deadline := time.Now().Add(5 * time.Second)
	for !late.interrupted() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !late.interrupted() {
		t.Fatal("relay added after the stop was not interrupted")
	}
}

// Relay and Abort are exclusive and run once: a transport that failed
// to upgrade releases the far end, and a second hand-over is ignored.
func TestSessionRunsOnce(t *testing.T) {
	var runs, aborts atomic.Int32
	x := NewSessionForTest(api0(), func(Client) { runs.Add(1) }, func() { aborts.Add(1) })
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	x.Relay(Client{Conn: c1})
	x.Relay(Client{Conn: c1})
	x.Abort()
	if runs.Load() != 1 || aborts.Load() != 0 {
		t.Fatalf("runs %d aborts %d", runs.Load(), aborts.Load())
	}
	y := NewSessionForTest(api0(), func(Client) { runs.Add(1) }, func() { aborts.Add(1) })
	y.Abort()
	y.Relay(Client{Conn: c1})
	if runs.Load() != 1 || aborts.Load() != 1 {
		t.Fatalf("runs %d aborts %d", runs.Load(), aborts.Load())
	}
}
