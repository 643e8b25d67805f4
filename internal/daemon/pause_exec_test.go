package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
)

// stampedWriter records what an exec stream delivered, and when.
type stampedWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	last time.Time
}

func (w *stampedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = time.Now()
	return w.buf.Write(p)
}

func (w *stampedWriter) lines() (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.buf.String(), "\n"), w.last
}

// An exec stream open across a pause waits (no output, not ended) and
// then continues to its exit status. The keep-alive runs 20 times faster
// than in production, so the pause spans many of its intervals and
// timeouts: a keep-alive that pinged the paused VM would end the session
// and the stream.
func TestExecStreamWaitsThroughPauseAndContinues(t *testing.T) {
	oldInterval, oldTimeout := agentclient.KeepAliveInterval, agentclient.KeepAliveTimeout
	agentclient.KeepAliveInterval, agentclient.KeepAliveTimeout = 50*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { agentclient.KeepAliveInterval, agentclient.KeepAliveTimeout = oldInterval, oldTimeout })
	h, _ := newSnapHarness(t)
	h.create("dev")
	const n = 30
	conn, err := h.client.Stream(context.Background(), api.MethodVMExec, api.ExecParams{Name: "dev", ExecRequest: api.ExecRequest{
		Argv: []string{"sh", "-c", fmt.Sprintf("i=1; while [ $i -le %d ]; do echo $i; i=$((i+1)); sleep 0.1; done; exit 3", n)}}}, nil, nil)
	must(t, err)
	defer conn.Close()
	out := &stampedWriter{}
	type result struct {
		st  proto.ExitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := proto.PumpExec(conn, strings.NewReader(""), out, io.Discard, nil)
		done <- result{st, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for c, _ := out.lines(); c < 3; c, _ = out.lines() {
		if time.Now().After(deadline) {
			t.Fatalf("the command printed %d lines in 10 s", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(t, h.call(api.MethodVMPause, api.NameParams{Name: "dev"}, nil))
	time.Sleep(300 * time.Millisecond) // output already in flight lands
	before, _ := out.lines()
	const pause = 2 * time.Second // 40 keep-alive intervals, 10 timeouts
	select {
	case r := <-done:
		t.Fatalf("the stream ended during the pause: %+v %v", r.st, r.err)
	case <-time.After(pause):
	}
	if after, last := out.lines(); after != before {
		t.Fatalf("output arrived while paused: %d lines before, %d after (last at %s)", before, after, last.Format(time.StampMilli))
	}
	if before >= n {
		t.Fatalf("all %d lines arrived before the pause took effect", before)
	}
	must(t, h.call(api.MethodVMResume, api.NameParams{Name: "dev"}, nil))
	select {
	case r := <-done:
		if r.err != nil || r.st.Code != 3 {
			t.Fatalf("after resume: status %+v, err %v", r.st, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit status 20 s after the resume")
	}
	got, _ := out.lines()
	if got <= before {
		t.Fatalf("no output after the resume (%d lines)", got)
	}
	out.mu.Lock()
	text := out.buf.String()
	out.mu.Unlock()
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	// The command runs on the host (the fake's agent), so it went on while
	// the VM was paused; what it printed then arrives after the resume,
	// in order and complete.
	if text != want.String() {
		t.Errorf("output %q, want 1..%d", text, n)
	}
	h.echo("dev", "after")
}
