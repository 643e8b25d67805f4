package e2e

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// startStreaming starts `banger ARGS...` in the test namespace, for a
// guest command that prints "started" first and then keeps running, and
// returns once that line arrived (the rest of stdout is discarded). The
// caller ends the command; stderr collects in errb.
func (e *env) startStreaming(within time.Duration, args ...string) (cmd *exec.Cmd, errb *bytes.Buffer) {
	e.t.Helper()
	cmd = exec.Command("ip", append([]string{"netns", "exec", e.ns, filepath.Join(e.bin, "banger")}, args...)...)
	cmd.Env = e.vars
	// Its own process group, which a test can signal as a terminal's
	// Ctrl-C does (the whole foreground group).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	errb = new(bytes.Buffer)
	cmd.Stderr = errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	started := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		started <- line == "started\n"
		io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-started:
		if !ok {
			cmd.Process.Kill()
			e.t.Fatalf("guest command did not start; stderr:\n%s", errb.String())
		}
	case <-time.After(within):
		cmd.Process.Kill()
		e.t.Fatalf("command never started; stderr:\n%s", errb.String())
	}
	return cmd, errb
}
