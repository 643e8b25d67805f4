package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDaemonStopInterruptsExec: `banger daemon stop` while a guest
// command streams through the daemon returns promptly, names what it
// interrupted, and the command's client reports that the daemon stopped
// (with --rm, the VM is gone too).
func TestDaemonStopInterruptsExec(t *testing.T) {
	e := newEnv(t)
	cmd, errb := e.startStreaming(3*time.Minute, "vm", "run", "--rm", "--name", "stopme", "--", "sh", "-c", "echo started; while :; do sleep 1; echo tick; done")

	begin := time.Now()
	out, err := e.hostBanger("daemon", "stop").CombinedOutput()
	took := time.Since(begin)
	t.Logf("daemon stop in %s:\n%s", took.Round(time.Millisecond), out)
	if err != nil || !strings.Contains(string(out), "interrupted: vm run stopme -- sh -c echo started") || !strings.Contains(string(out), "bangerd stopped") {
		t.Errorf("daemon stop: %v\n%s", err, out)
	}
	if took > 20*time.Second {
		t.Errorf("daemon stop took %s with one exec streaming", took)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("vm run still running 30s after daemon stop")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 || !strings.Contains(errb.String(), "daemon stopped") {
		t.Errorf("vm run: %v, want exit 125 and \"daemon stopped\"; stderr:\n%s", err, errb.String())
	}
	e.assertClean()
}
