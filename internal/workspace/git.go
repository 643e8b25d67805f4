package workspace

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// git runs git commands in one repository of the host. The environment
// is the user's (their ignore rules and config apply) minus the variables
// that would point git at another repository, plus GIT_OPTIONAL_LOCKS=0
// so that reading the repository never rewrites its index.
type git struct {
	dir string   // the working tree
	env []string // extra variables (a temporary index or object directory)
}

// gitEnvDrop are variables that would make git act on something other
// than g.dir's repository.
var gitEnvDrop = []string{
	"GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE=", "GIT_OBJECT_DIRECTORY=",
	"GIT_ALTERNATE_OBJECT_DIRECTORIES=", "GIT_COMMON_DIR=", "GIT_NAMESPACE=", "GIT_PREFIX=",
}

func (g git) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", g.dir}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		drop := false
		for _, p := range gitEnvDrop {
			drop = drop || strings.HasPrefix(kv, p)
		}
		if !drop {
			env = append(env, kv)
		}
	}
	cmd.Env = append(append(env, "GIT_OPTIONAL_LOCKS=0", "LC_ALL=C", "GIT_TERMINAL_PROMPT=0"), g.env...)
	return cmd
}

// out runs git and returns its stdout; a failure carries git's stderr.
func (g git) out(ctx context.Context, args ...string) ([]byte, error) {
	return g.outIn(ctx, nil, args...)
}

func (g git) outIn(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := g.cmd(ctx, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &gitError{args: args, err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}

// line runs git and returns its output's first line.
func (g git) line(ctx context.Context, args ...string) (string, error) {
	b, err := g.out(ctx, args...)
	s, _, _ := strings.Cut(string(b), "\n")
	return s, err
}

type gitError struct {
	args   []string
	err    error
	stderr string
}

func (e *gitError) Error() string {
	msg := e.stderr
	if msg == "" {
		msg = e.err.Error()
	}
	return fmt.Sprintf("git %s: %s", strings.Join(e.args, " "), msg)
}

func (e *gitError) Unwrap() error { return e.err }

// splitZ splits NUL-terminated records.
func splitZ(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out
}
