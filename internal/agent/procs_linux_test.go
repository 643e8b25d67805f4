package agent

import (
	"context"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// TestReaperRoutesStatuses runs exec through the PID-1 reaper: statuses
// must reach their requests although the reaper waits for any child.
func TestReaperRoutesStatuses(t *testing.T) {
	r := newReaper()
	ctx, cancel := context.WithCancel(context.Background())
	reaped := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(reaped)
	}()
	// Stop reaping before the next test runs commands of its own.
	t.Cleanup(func() { cancel(); <-reaped })
	c := connectAgent(t, &Server{procs: r}, nil)
	tests := []struct {
		script string
		want   proto.ExitStatus
	}{
		{"exit 5", proto.ExitStatus{Code: 5}},
		{"true", proto.ExitStatus{Code: 0}},
		{"kill -KILL $$", proto.ExitStatus{Code: 137, Signal: "SIGKILL"}},
		{"sleep 0.2 & exit 7", proto.ExitStatus{Code: 7}},
	}
	for _, tc := range tests {
		st, err := c.Exec(testCtx(t), proto.ExecRequest{Argv: []string{"sh", "-c", tc.script}, Dir: "/"}, nil, nil, nil)
		if err != nil || st != tc.want {
			t.Errorf("%s: status %+v err %v, want %+v", tc.script, st, err, tc.want)
		}
	}
}
