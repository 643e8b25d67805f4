package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
)

// daemon stop with an exec streaming forever: stop names the stream,
// the exec's client gets "daemon stopped", and the daemon (with its
// lock) is gone within the bound.
func TestDaemonStopInterruptsExecStreams(t *testing.T) {
	h := newHarness(t)
	h.create("dev")
	conn, err := h.client.Stream(context.Background(), api.MethodVMExec,
		api.ExecParams{Name: "dev", ExecRequest: api.ExecRequest{Argv: []string{"sh", "-c", "while :; do echo tick; sleep 0.05; done"}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type result struct {
		st  proto.ExitStatus
		err error
	}
	ticks := make(chan struct{}, 1)
	resc := make(chan result, 1)
	go func() {
		w := &tickWriter{seen: ticks}
		st, err := proto.PumpExec(conn, nil, w, w, nil)
		resc <- result{st, err}
	}()
	select {
	case <-ticks:
	case <-time.After(10 * time.Second):
		t.Fatal("the exec never streamed")
	}

	start := time.Now()
	var st api.Status
	must(t, h.call(api.MethodShutdown, nil, &st))
	if len(st.Interrupted) != 1 || !strings.HasPrefix(st.Interrupted[0], "vm exec dev -- sh -c while") || !strings.Contains(st.Interrupted[0], "(client pid ") {
		t.Errorf("stop says it interrupted %q", st.Interrupted)
	}
	select {
	case r := <-resc:
		if r.err != nil || r.st.Error != errDaemonStopped || r.st.Code != interruptedExit {
			t.Errorf("exec client got %+v, %v; want %q", r.st, r.err, errDaemonStopped)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec client still streaming 10s after daemon stop")
	}
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(12 * time.Second):
		t.Fatal("daemon still running 12s after daemon stop")
	}
	took := time.Since(start)
	t.Logf("daemon stopped %s after the stop call", took)
	if took > 5*time.Second {
		t.Errorf("daemon took %s to stop with one exec stream; nothing else was running", took)
	}
	// The lock is free: a new daemon starts.
	h.start()
}

type tickWriter struct{ seen chan struct{} }

func (w *tickWriter) Write(p []byte) (int, error) {
	select {
	case w.seen <- struct{}{}:
	default:
	}
	return len(p), nil
}
