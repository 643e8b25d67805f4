package cli_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/rpc"
)

type frame struct {
	typ     byte
	payload string
}

// runHandler stubs vm.run: it reports the params, sends a spec and a boot
// progress event, upgrades, collects stdin frames until FrameStdinEOF,
// then writes frames (a "<stdin>" payload is replaced by what was read).
// With eager, it writes the frames straight after the upgrade instead, as
// the daemon's relay does when the guest answers at once.
func runHandler(params chan<- api.RunParams, frames []frame, eager ...bool) rpc.Handler {
	return func(ctx context.Context, c *rpc.Call) (any, error) {
		var p api.RunParams
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		params <- p
		c.Progress(api.StageSpec, "2 vcpu · 1 GiB memory · 8 GiB disk")
		c.Progress("boot", "waiting for the agent")
		conn, br, err := c.Upgrade(api.VM{Name: "run-1", State: "running"})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		if len(eager) > 0 && eager[0] {
			for _, f := range frames {
				proto.WriteFrame(conn, f.typ, []byte(f.payload))
			}
			return nil, rpc.ErrUpgraded
		}
		var stdin strings.Builder
		for {
			typ, payload, err := proto.ReadFrame(br)
			if err != nil {
				return nil, rpc.ErrUpgraded
			}
			if typ == proto.FrameStdin {
				stdin.Write(payload)
			}
			if typ == proto.FrameStdinEOF {
				break
			}
		}
		for _, f := range frames {
			payload := strings.ReplaceAll(f.payload, "<stdin>", stdin.String())
			if err := proto.WriteFrame(conn, f.typ, []byte(payload)); err != nil {
				break
			}
		}
		return nil, rpc.ErrUpgraded
	}
}

func TestVMRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		frames     []frame
		wantCode   int
		wantOut    string
		wantErr    []string // substrings of stderr
		notWantErr []string
	}{
		{
			name:     "exit code propagates",
			args:     []string{"vm", "run", "--rm", "--", "sh", "-c", "echo hi; exit 7"},
			frames:   []frame{{proto.FrameStdout, "hi\n"}, {proto.FrameExit, `{"code":7}`}},
			wantCode: 7, wantOut: "hi\n",
			wantErr:    []string{"spec: 2 vcpu · 1 GiB memory · 8 GiB disk\n", "boot: waiting for the agent\n"},
			notWantErr: []string{"still running"},
		},
		{
			name:     "success, stderr and stdin",
			args:     []string{"vm", "run", "--rm", "--", "cat"},
			stdin:    "piped input\n",
			frames:   []frame{{proto.FrameStderr, "warning\n"}, {proto.FrameStdout, "<stdin>"}, {proto.FrameExit, `{"code":0}`}},
			wantCode: 0, wantOut: "piped input\n",
			wantErr: []string{"warning\n"},
		},
		{
			name:     "kept VM is reported",
			args:     []string{"vm", "run", "--", "true"},
			frames:   []frame{{proto.FrameExit, `{"code":0}`}},
			wantCode: 0,
			wantErr:  []string{"banger: VM run-1 is still running (banger vm delete run-1)"},
		},
		{
			name:     "command could not start",
			args:     []string{"vm", "run", "--rm", "--", "nope"},
			frames:   []frame{{proto.FrameExit, `{"code":0,"error":"exec: \"nope\": not found"}`}},
			wantCode: cli.ExitRunFailed,
			wantErr:  []string{"banger: exec: \"nope\": not found"},
		},
		{
			name:     "killed by a signal",
			args:     []string{"vm", "run", "--rm", "--", "sleep", "9"},
			frames:   []frame{{proto.FrameExit, `{"code":137,"signal":"killed"}`}},
			wantCode: 137,
		},
		{
			name:     "stream ends without an exit frame",
			args:     []string{"vm", "run", "--rm", "--", "true"},
			frames:   []frame{{proto.FrameStdout, "partial"}},
			wantCode: cli.ExitRunFailed, wantOut: "partial",
			wantErr: []string{"banger: lost the command's stream"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := make(chan api.RunParams, 1)
			d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: runHandler(params, tt.frames)})
			env, out, errb := newEnv(t, d.dial, tt.stdin)
			code := runCLI(t, env, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, errb.String())
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout = %q, want %q", out.String(), tt.wantOut)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q lacks %q", errb.String(), w)
				}
			}
			for _, w := range tt.notWantErr {
				if strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q contains %q", errb.String(), w)
				}
			}
			if spec := strings.Index(errb.String(), "spec: "); spec < 0 || spec > strings.Index(errb.String(), "boot: ") {
				t.Errorf("spec line missing or not first: %q", errb.String())
			}
			<-params
		})
	}
}

// slowWriter delays the write of the "boot:" progress line, so that the
// result line and the first frames reach the client in one read.
type slowWriter struct{ buf *bytes.Buffer }

func (w slowWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("boot: ")) {
		time.Sleep(150 * time.Millisecond)
	}
	return w.buf.Write(p)
}

// TestVMRunFramesRightBehindResult: frames that arrive together with the
// result line (buffered by the client) must not be lost.
func TestVMRunFramesRightBehindResult(t *testing.T) {
	params := make(chan api.RunParams, 1)
	frames := []frame{{proto.FrameStdout, "hi\n"}, {proto.FrameExit, `{"code":7}`}}
	d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: runHandler(params, frames, true)})
	env, out, errb := newEnv(t, d.dial, "")
	env.Err = slowWriter{errb}
	if code := runCLI(t, env, "vm", "run", "--rm", "--", "echo", "hi"); code != 7 {
		t.Fatalf("exit %d, want 7 (stderr %q)", code, errb.String())
	}
	if out.String() != "hi\n" {
		t.Fatalf("stdout = %q, want %q", out.String(), "hi\n")
	}
}

func TestVMRunSendsParams(t *testing.T) {
	params := make(chan api.RunParams, 1)
	d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: runHandler(params, []frame{{proto.FrameExit, `{"code":0}`}})})
	env, _, errb := newEnv(t, d.dial, "")
	code := runCLI(t, env, "vm", "run", "--rm", "--name", "box", "--vcpu", "2", "--memory", "512", "--disk-size", "4G",
		"-e", "A=1", "-e", "B=two words", "-w", "/tmp", "--", "ls", "--all", "-e")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := <-params
	want := api.RunParams{Create: api.CreateParams{Name: "box", VCPU: 2, MemoryMiB: 512, DiskSize: "4G"}, // flags after the command belong to it
		Remove: true, ExecRequest: api.ExecRequest{Env: []string{"A=1", "B=two words"}, Argv: []string{"ls", "--all", "-e"}, Dir: "/tmp"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("daemon got %+v\nwant %+v", got, want)
	}
}

func TestVMRunDaemonRefuses(t *testing.T) {
	d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: func(ctx context.Context, c *rpc.Call) (any, error) {
		// The daemon sends no spec line for an image it cannot find.
		return nil, &api.Error{Code: api.CodeNotFound, Message: `image "nope" not found`}
	}})
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "run", "--rm", "--image", "nope", "--", "true"); code != cli.ExitRunFailed {
		t.Fatalf("exit %d, want %d", code, cli.ExitRunFailed)
	}
	if errb.String() != "banger: image \"nope\" not found\n" {
		t.Fatalf("stderr = %q", errb.String())
	}
	if out.Len() != 0 {
		t.Fatalf("stdout = %q", out.String())
	}
}

func TestVMRunDialFailure(t *testing.T) {
	env, _, errb := newEnv(t, func(context.Context) (net.Conn, error) { return nil, errors.New("dial boom") }, "")
	if code := runCLI(t, env, "vm", "run", "--rm", "--", "true"); code != cli.ExitRunFailed {
		t.Fatalf("exit %d, want %d", code, cli.ExitRunFailed)
	}
	if !strings.Contains(errb.String(), "banger: dial boom") {
		t.Fatalf("stderr = %q", errb.String())
	}
}

// TestVMRunWithoutCommand: no command is the daemon's to decide (the
// image's own command, or a refusal naming the image), not a usage error.
func TestVMRunWithoutCommand(t *testing.T) {
	for _, args := range [][]string{
		{"vm", "run", "--rm", "--image", "hello"},
		{"vm", "run", "--rm", "--image", "hello", "--"},
	} {
		params := make(chan api.RunParams, 1)
		d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: runHandler(params, []frame{{proto.FrameStdout, "Hello\n"}, {proto.FrameExit, `{"code":0}`}})})
		env, out, errb := newEnv(t, d.dial, "")
		if code := runCLI(t, env, args...); code != 0 || out.String() != "Hello\n" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
		if got := <-params; len(got.Argv) != 0 || got.Create.Image != "hello" {
			t.Errorf("%v: daemon got %+v, want no argv", args, got)
		}
	}
	d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: func(ctx context.Context, c *rpc.Call) (any, error) {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "image debian-bookworm defines no command: give one after --, e.g. banger vm run -- make test"}
	}})
	env, _, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "run", "--rm"); code != cli.ExitRunFailed || !strings.Contains(errb.String(), "banger: image debian-bookworm defines no command") {
		t.Fatalf("refused: exit %d, stderr %q", code, errb.String())
	}
}

// vm exec sends the VM name, the command (flags after -- belong to it),
// env and workdir, relays output and takes the guest's exit code.
func TestVMExec(t *testing.T) {
	params := make(chan api.ExecParams, 1)
	d := startDaemon(t, map[string]rpc.Handler{api.MethodVMExec: func(ctx context.Context, c *rpc.Call) (any, error) {
		var p api.ExecParams
		if err := c.Decode(&p); err != nil {
			return nil, err
		}
		params <- p
		conn, _, err := c.Upgrade(api.VM{Name: p.Name, State: "running"})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		proto.WriteFrame(conn, proto.FrameStdout, []byte("out\n"))
		proto.WriteFrame(conn, proto.FrameStderr, []byte("err\n"))
		proto.WriteFrame(conn, proto.FrameExit, []byte(`{"code":3}`))
		return nil, rpc.ErrUpgraded
	}})
	env, out, errb := newEnv(t, d.dial, "")
	code := runCLI(t, env, "vm", "exec", "dev", "-e", "A=1", "-w", "/srv", "-u", "node:staff", "--", "ls", "--all", "-e")
	if code != 3 || out.String() != "out\n" || errb.String() != "err\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	want := api.ExecParams{Name: "dev", ExecRequest: api.ExecRequest{Argv: []string{"ls", "--all", "-e"}, Env: []string{"A=1"}, Dir: "/srv", User: "node:staff"}}
	if got := <-params; !reflect.DeepEqual(got, want) {
		t.Fatalf("daemon got %+v\nwant %+v", got, want)
	}
	for _, args := range [][]string{{"vm", "exec"}, {"vm", "exec", "dev"}, {"vm", "exec", "dev", "--"}} {
		env, _, errb := newEnv(t, d.dial, "")
		if code := runCLI(t, env, args...); code != 2 || !strings.Contains(errb.String(), "vm exec: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

// -t asks for a guest terminal: its size (80x24 when stdout is not a
// terminal) and TERM, under any -e value, reach the daemon.
func TestTTYFlag(t *testing.T) {
	t.Setenv("TERM", "xterm-256color")
	params := make(chan api.RunParams, 1)
	d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: runHandler(params, []frame{{proto.FrameExit, `{"code":0}`}})})
	env, _, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "run", "--rm", "-t", "-e", "A=1", "--", "bash"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := <-params
	if got.TTY == nil || *got.TTY != (api.WinSize{Rows: 24, Cols: 80}) || !reflect.DeepEqual(got.Env, []string{"TERM=xterm-256color", "A=1"}) {
		t.Fatalf("daemon got tty %+v env %q", got.TTY, got.Env)
	}
	env, _, _ = newEnv(t, d.dial, "")
	runCLI(t, env, "vm", "run", "--rm", "--", "true")
	if got := <-params; got.TTY != nil {
		t.Fatalf("no -t, yet tty %+v", got.TTY)
	}
}
