package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// hostGet fetches url from the test namespace (where the daemon and its
// forwards live), "" when nothing answers.
func (e *env) hostGet(url string) string {
	e.t.Helper()
	out, _ := e.inNS("curl", "-s", "--max-time", "4", url)
	return strings.TrimSpace(out)
}

func TestForward(t *testing.T) {
	e := newEnv(t)
	newUpstream(t, e) // banger's DNS needs an upstream resolver
	e.must("vm", "create", "--name", "fw", "-p", "18080:8000")
	e.guestHTTP("fw", 8000, "hello through -p")

	t.Run("-p and vm forward reach a guest server from the host's loopback", func(t *testing.T) {
		e.t = t
		if got := e.hostGet("http://127.0.0.1:18080/"); got != "hello through -p" {
			t.Errorf("-p 18080:8000: %q", got)
		}
		e.must("vm", "forward", "fw", "18081:8000")
		if got := e.hostGet("http://127.0.0.1:18081/"); got != "hello through -p" {
			t.Errorf("vm forward 18081:8000: %q", got)
		}
		r := e.must("vm", "forward", "ls", "fw", "--json")
		for _, want := range []string{`"host_port": 18080`, `"host_port": 18081`, `"active": true`} {
			if !strings.Contains(r.out, want) {
				t.Errorf("forward ls lacks %s:\n%s", want, r.out)
			}
		}
		e.must("vm", "forward", "rm", "fw", "18081")
		if got := e.hostGet("http://127.0.0.1:18081/"); got != "" {
			t.Errorf("removed forward still answers: %q", got)
		}
		// Kept with the VM: back after a stop and start.
		e.must("vm", "stop", "fw")
		if got := e.hostGet("http://127.0.0.1:18080/"); got != "" {
			t.Errorf("forward of a stopped VM answers: %q", got)
		}
		e.must("vm", "start", "fw")
		e.guestHTTP("fw", 8000, "hello again")
		if got := e.hostGet("http://127.0.0.1:18080/"); got != "hello again" {
			t.Errorf("-p after restart: %q", got)
		}
	})

	t.Run("a busy host port is refused with its holder", func(t *testing.T) {
		e.t = t
		serveHTTPIn(t, e.ns, "tcp4", "127.0.0.1:18090", "the holder")
		r := e.banger("vm", "forward", "fw", "18090:8000")
		if r.code == 0 || !strings.Contains(r.err, "in use by") || !strings.Contains(r.err, fmt.Sprintf("pid %d", os.Getpid())) {
			t.Errorf("busy port: exit %d %q", r.code, r.err)
		}
		if r := e.must("vm", "forward", "ls", "fw", "--json"); strings.Contains(r.out, "18090") {
			t.Errorf("a refused forward was kept:\n%s", r.out)
		}
	})

	t.Run("auto-forward follows the guest's listeners", func(t *testing.T) {
		e.t = t
		e.must("vm", "forward", "fw", "--auto")
		e.guestHTTP("fw", 18095, "auto hello")
		start := time.Now()
		got := ""
		for time.Since(start) < 2*time.Second && got != "auto hello" {
			got = e.hostGet("http://127.0.0.1:18095/")
		}
		if got != "auto hello" {
			t.Fatalf("auto-forward of guest port 18095 not usable within 2 s: %q", got)
		}
		t.Logf("auto-forward usable %s after the guest listened", time.Since(start).Round(time.Millisecond))
		if r := e.must("vm", "forward", "ls", "fw"); !strings.Contains(r.out, "auto") {
			t.Errorf("forward ls lacks the auto forward:\n%s", r.out)
		}
		e.must("vm", "exec", "fw", "--", "sh", "-c", "pkill -f 'LocalPort=>1809[5]'")
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if r := e.must("vm", "forward", "ls", "fw", "--json"); !strings.Contains(r.out, "18095") {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Error("auto-forward not removed after the guest stopped listening")
	})
}
