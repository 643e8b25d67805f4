package envd

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	ppb "github.com/banger-dev/banger/proto/process"
)

// collected is what a process stream carried.
type collected struct {
	pid                 uint32
	stdout, stderr, pty string
	end                 *ppb.ProcessEvent_EndEvent
}

// collect reads a Start or Connect stream to its end.
func collect[T interface{ GetEvent() *ppb.ProcessEvent }](t *testing.T, s interface {
	Receive() bool
	Msg() T
	Err() error
}) collected {
	t.Helper()
	var c collected
	for s.Receive() {
		ev := s.Msg().GetEvent()
		switch {
		case ev.GetStart() != nil:
			c.pid = ev.GetStart().GetPid()
		case ev.GetData() != nil:
			c.stdout += string(ev.GetData().GetStdout())
			c.stderr += string(ev.GetData().GetStderr())
			c.pty += string(ev.GetData().GetPty())
		case ev.GetEnd() != nil:
			c.end = ev.GetEnd()
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return c
}

func startReq(cmd string, args ...string) *connect.Request[ppb.StartRequest] {
	return connect.NewRequest(&ppb.StartRequest{Process: &ppb.ProcessConfig{Cmd: cmd, Args: args}})
}

func TestProcessStart(t *testing.T) {
	codecs(t, func(t *testing.T, e *testEnv) {
		dir := t.TempDir()
		req := startReq("/bin/sh", "-c", `echo "$FOO $IMAGE_VAR $(pwd) $(id -un)"; echo oops >&2; exit 3`)
		req.Msg.Process.Envs = map[string]string{"FOO": "bar"}
		req.Msg.Process.Cwd = &dir
		no := false
		req.Msg.Stdin = &no
		s, err := e.proc.Start(testCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		c := collect(t, s)
		if c.pid == 0 || c.stdout != "bar from-image "+dir+" root\n" || c.stderr != "oops\n" {
			t.Fatalf("got %+v", c)
		}
		if c.end.GetExitCode() != 3 || !c.end.GetExited() || c.end.GetStatus() != "exit status 3" {
			t.Fatalf("end %+v", c.end)
		}

		// A command that cannot start is an error, not a stream.
		// A command that cannot start ends the stream with an error.
		if err := streamErr(e.proc.Start(testCtx(t), startReq("/no/such/program"))); codeOf(err) != connect.CodeInvalidArgument ||
			!strings.Contains(err.Error(), "no such file") {
			t.Fatalf("missing program: %v", err)
		}
		if err := streamErr(e.proc.Start(testCtx(t), startReq(""))); codeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("empty cmd: %v", err)
		}
	})
}

func TestProcessBackgroundInputAndSignals(t *testing.T) {
	codecs(t, func(t *testing.T, e *testEnv) {
		ctx := testCtx(t)
		req := startReq("/bin/cat")
		tag := "cat-1"
		req.Msg.Tag = &tag
		bg, err := e.proc.Start(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !bg.Receive() || bg.Msg().GetEvent().GetStart() == nil {
			t.Fatalf("no start event: %v", bg.Err())
		}
		pid := bg.Msg().GetEvent().GetStart().GetPid()
		// The starting call goes away; the process stays (background).
		bg.Close()

		list, err := e.proc.List(ctx, connect.NewRequest(&ppb.ListRequest{}))
		if err != nil || len(list.Msg.GetProcesses()) != 1 || list.Msg.GetProcesses()[0].GetPid() != pid ||
			list.Msg.GetProcesses()[0].GetTag() != tag || list.Msg.GetProcesses()[0].GetConfig().GetCmd() != "/bin/cat" {
			t.Fatalf("list: %v %v", list, err)
		}

		// Re-attach by tag, then feed it by pid from other calls.
		cs, err := e.proc.Connect(ctx, connect.NewRequest(&ppb.ConnectRequest{Process: &ppb.ProcessSelector{Selector: &ppb.ProcessSelector_Tag{Tag: tag}}}))
		if err != nil {
			t.Fatal(err)
		}
		if !cs.Receive() || cs.Msg().GetEvent().GetStart().GetPid() != pid {
			t.Fatalf("connect start: %v", cs.Err())
		}
		byPID := &ppb.ProcessSelector{Selector: &ppb.ProcessSelector_Pid{Pid: pid}}
		if _, err := e.proc.SendInput(ctx, connect.NewRequest(&ppb.SendInputRequest{Process: byPID,
			Input: &ppb.ProcessInput{Input: &ppb.ProcessInput_Stdin{Stdin: []byte("one\n")}}})); err != nil {
			t.Fatal(err)
		}
		in := e.proc.StreamInput(ctx)
		in.Send(&ppb.StreamInputRequest{Event: &ppb.StreamInputRequest_Start{Start: &ppb.StreamInputRequest_StartEvent{Process: byPID}}})
		in.Send(&ppb.StreamInputRequest{Event: &ppb.StreamInputRequest_Data{Data: &ppb.StreamInputRequest_DataEvent{
			Input: &ppb.ProcessInput{Input: &ppb.ProcessInput_Stdin{Stdin: []byte("two\n")}}}}})
		if _, err := in.CloseAndReceive(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.proc.CloseStdin(ctx, connect.NewRequest(&ppb.CloseStdinRequest{Process: byPID})); err != nil {
			t.Fatal(err)
		}
		c := collect(t, cs)
		if c.stdout != "one\ntwo\n" || c.end.GetExitCode() != 0 {
			t.Fatalf("cat: %+v", c)
		}
		// Gone from the list once ended.
		waitFor(t, func() bool {
			l, _ := e.proc.List(ctx, connect.NewRequest(&ppb.ListRequest{}))
			return len(l.Msg.GetProcesses()) == 0
		})
		// ... and the sandbox's table with it.
		waitFor(t, func() bool {
			e.srv.mu.Lock()
			defer e.srv.mu.Unlock()
			return len(e.srv.procs) == 0
		})
		_, err = e.proc.SendInput(ctx, connect.NewRequest(&ppb.SendInputRequest{Process: byPID}))
		if codeOf(err) != connect.CodeNotFound {
			t.Fatalf("input to an ended process: %v", err)
		}

		// SIGKILL ends a process that ignores stdin.
		s, err := e.proc.Start(ctx, startReq("/bin/sleep", "300"))
		if err != nil || !s.Receive() {
			t.Fatal(err)
		}
		spid := s.Msg().GetEvent().GetStart().GetPid()
		if _, err := e.proc.SendSignal(ctx, connect.NewRequest(&ppb.SendSignalRequest{
			Process: &ppb.ProcessSelector{Selector: &ppb.ProcessSelector_Pid{Pid: spid}}, Signal: ppb.Signal_SIGNAL_SIGKILL})); err != nil {
			t.Fatal(err)
		}
		c = collect(t, s)
		if c.end.GetExitCode() != 137 || c.end.GetExited() || c.end.GetStatus() != "signal: SIGKILL" {
			t.Fatalf("killed: %+v", c.end)
		}
		_, err = e.proc.SendSignal(ctx, connect.NewRequest(&ppb.SendSignalRequest{Process: &ppb.ProcessSelector{}}))
		if codeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("no selector: %v", err)
		}
	})
}

func TestProcessPTY(t *testing.T) {
	codecs(t, func(t *testing.T, e *testEnv) {
		ctx := testCtx(t)
		req := startReq("/bin/sh")
		req.Msg.Pty = &ppb.PTY{Size: &ppb.PTY_Size{Cols: 80, Rows: 24}}
		s, err := e.proc.Start(ctx, req)
		if err != nil || !s.Receive() {
			t.Fatal(err)
		}
		sel := &ppb.ProcessSelector{Selector: &ppb.ProcessSelector_Pid{Pid: s.Msg().GetEvent().GetStart().GetPid()}}
		if _, err := e.proc.Update(ctx, connect.NewRequest(&ppb.UpdateRequest{Process: sel, Pty: &ppb.PTY{Size: &ppb.PTY_Size{Cols: 123, Rows: 45}}})); err != nil {
			t.Fatal(err)
		}
		if _, err := e.proc.CloseStdin(ctx, connect.NewRequest(&ppb.CloseStdinRequest{Process: sel})); codeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("close a terminal's stdin: %v", err)
		}
		if _, err := e.proc.SendInput(ctx, connect.NewRequest(&ppb.SendInputRequest{Process: sel,
			Input: &ppb.ProcessInput{Input: &ppb.ProcessInput_Pty{Pty: []byte("stty size; exit 7\n")}}})); err != nil {
			t.Fatal(err)
		}
		c := collect(t, s)
		if !strings.Contains(c.pty, "45 123") || c.stdout != "" || c.end.GetExitCode() != 7 {
			t.Fatalf("pty: %q %+v", c.pty, c.end)
		}
	})
}

// streamErr drains a stream and returns its error.
func streamErr[T any](s *connect.ServerStreamForClient[T], err error) error {
	if err != nil {
		return err
	}
	for s.Receive() {
	}
	return s.Err()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met in 10 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
