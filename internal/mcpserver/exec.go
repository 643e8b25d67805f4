package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
)

// Bounds of run_command.
const (
	defaultTimeout   = 300 * time.Second
	maxTimeout       = 3600 * time.Second
	defaultMaxOutput = 64 << 10
	maxMaxOutput     = 1 << 20
	// killGrace is how long a timed-out command has, after SIGKILL, to
	// report its exit before the stream is closed.
	killGrace = 5 * time.Second
)

// RunInput is run_command's arguments.
type RunInput struct {
	Sandbox        string            `json:"sandbox" jsonschema:"the sandbox's name"`
	Argv           []string          `json:"argv,omitempty" jsonschema:"the command as an argument vector, run without a shell, e.g. [\"make\", \"test\"]; give argv or command, not both"`
	Command        string            `json:"command,omitempty" jsonschema:"the command as one shell command line, run with /bin/sh -c (pipes, &&, redirections work); give argv or command, not both"`
	Cwd            string            `json:"cwd,omitempty" jsonschema:"directory to run in (default: the image's working directory, else /root)"`
	User           string            `json:"user,omitempty" jsonschema:"guest user to run as: a name or uid, optionally :group or :gid (default: the image's user, else root)"`
	Env            map[string]string `json:"env,omitempty" jsonschema:"environment variables to set, over the image's"`
	Stdin          string            `json:"stdin,omitempty" jsonschema:"text given to the command on its standard input (default: none, stdin is closed)"`
	TimeoutSeconds int               `json:"timeout_seconds,omitempty" jsonschema:"kill the command (SIGKILL) after this many seconds; default 300, at most 3600"`
	MaxOutputBytes int               `json:"max_output_bytes,omitempty" jsonschema:"keep at most this many bytes of stdout and of stderr each (the start and the end; the middle is cut and marked); default 65536, at most 1048576"`
}

// RunOutput is run_command's result.
type RunOutput struct {
	ExitCode        int    `json:"exit_code" jsonschema:"the command's exit code; 128+N when killed by signal N"`
	Signal          string `json:"signal,omitempty" jsonschema:"the signal that killed the command, if one did"`
	TimedOut        bool   `json:"timed_out,omitempty" jsonschema:"true when the command ran past timeout_seconds and was killed"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty" jsonschema:"true when stdout was longer than max_output_bytes and its middle was cut"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
	StdoutBytes     int64  `json:"stdout_bytes" jsonschema:"stdout's whole length"`
	StderrBytes     int64  `json:"stderr_bytes"`
}

func (t *tools) addExecTools(s *mcp.Server) {
	add(s, t.log, &mcp.Tool{Name: "run_command", Title: "Run a command in a sandbox",
		Description: "Run a command in a running sandbox through banger's guest agent (no ssh) and return its exit code, stdout and stderr once it exits. " +
			"Give argv (no shell) or command (a /bin/sh -c line). Output beyond max_output_bytes is cut in the middle and marked; " +
			"a command running past timeout_seconds is killed and reported with timed_out. A non-zero exit code is a result, not an error."},
		t.run)
}

func (t *tools) run(ctx context.Context, req *mcp.CallToolRequest, in RunInput) (RunOutput, error) {
	var out RunOutput
	argv, err := commandArgv(in.Argv, in.Command)
	if err != nil {
		return out, err
	}
	timeout, err := bounded("timeout_seconds", in.TimeoutSeconds, defaultTimeout/time.Second, maxTimeout/time.Second)
	if err != nil {
		return out, err
	}
	limit, err := bounded("max_output_bytes", in.MaxOutputBytes, defaultMaxOutput, maxMaxOutput)
	if err != nil {
		return out, err
	}
	if in.Sandbox == "" {
		return out, errors.New("sandbox: name the sandbox to run in (list_sandboxes shows them)")
	}
	env, err := envList(in.Env)
	if err != nil {
		return out, err
	}
	var stdin io.Reader
	if in.Stdin != "" {
		stdin = strings.NewReader(in.Stdin)
	}
	stdout, stderr := newClipBuffer(int(limit)), newClipBuffer(int(limit))
	res, err := t.exec(ctx, api.ExecParams{Name: in.Sandbox, ExecRequest: api.ExecRequest{Argv: argv, Dir: in.Cwd, Env: env, User: in.User}},
		stdin, stdout, stderr, time.Duration(timeout)*time.Second)
	if err != nil {
		return out, err
	}
	out = RunOutput{ExitCode: res.Code, Signal: res.Signal, TimedOut: res.timedOut,
		Stdout: stdout.String(), Stderr: stderr.String(), StdoutTruncated: stdout.Truncated(), StderrTruncated: stderr.Truncated(),
		StdoutBytes: stdout.n, StderrBytes: stderr.n}
	return out, nil
}

// commandArgv is the argv of exactly one of argv and command.
func commandArgv(argv []string, command string) ([]string, error) {
	switch {
	case len(argv) > 0 && command != "":
		return nil, errors.New("give argv or command, not both")
	case len(argv) > 0:
		if argv[0] == "" {
			return nil, errors.New("argv[0]: the program to run is empty")
		}
		return argv, nil
	case strings.TrimSpace(command) != "":
		return []string{"/bin/sh", "-c", command}, nil
	}
	return nil, errors.New("no command: give argv (e.g. [\"ls\", \"-l\"]) or command (e.g. \"ls -l | head\")")
}

// bounded is v, or def when v is zero, refused outside 1..max.
func bounded[N ~int | ~int64](name string, v int, def, max N) (N, error) {
	if v == 0 {
		return def, nil
	}
	if v < 0 || N(v) > max {
		return 0, fmt.Errorf("%s: %d is out of range (1 to %d)", name, v, max)
	}
	return N(v), nil
}

// envList is env as KEY=VALUE, sorted so the order is stable.
func envList(env map[string]string) ([]string, error) {
	var out []string
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("env: %q is not a variable name", k)
		}
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out, nil
}

// execResult is how a command ended.
type execResult struct {
	proto.ExitStatus
	timedOut bool
}

// exec runs p to its end, writing its output to stdout and stderr. After
// timeout the command's process group gets SIGKILL; leaving ctx (the
// client cancelled) closes the stream, which ends the command.
func (t *tools) exec(ctx context.Context, p api.ExecParams, stdin io.Reader, stdout, stderr io.Writer, timeout time.Duration) (execResult, error) {
	conn, err := t.d.VMExec(ctx, p)
	if err != nil {
		return execResult{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ctl := make(chan proto.Frame, 1)
	var timedOut atomic.Bool
	kill := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		ctl <- proto.SignalFrame(byte(syscall.SIGKILL))
		time.AfterFunc(killGrace, func() { conn.Close() })
	})
	st, err := proto.PumpExec(conn, stdin, stdout, stderr, ctl)
	kill.Stop()
	killed := timedOut.Load()
	res := execResult{ExitStatus: st, timedOut: killed}
	switch {
	case err != nil && ctx.Err() != nil:
		return res, ctx.Err()
	case err != nil && killed:
		res.Code, res.Signal = 128+int(syscall.SIGKILL), "killed"
		return res, nil
	case err != nil:
		return res, fmt.Errorf("lost the command's stream (is the sandbox still running?): %w", err)
	case st.Error != "":
		return res, fmt.Errorf("the command could not start: %s", st.Error)
	}
	return res, nil
}
