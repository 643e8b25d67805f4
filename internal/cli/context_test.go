package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestContextsAndHostPrecedence(t *testing.T) {
	t.Setenv("BANGER_HOST", "")
	noDaemon := func(context.Context) (net.Conn, error) { return nil, errors.New("no daemon here") }
	env, out, errb := newEnv(t, noDaemon, "")
	run := func(want int, args ...string) string {
		t.Helper()
		out.Reset()
		errb.Reset()
		if code := runCLI(t, env, args...); code != want {
			t.Fatalf("banger %s: exit %d, want %d; stderr %s", strings.Join(args, " "), code, want, errb)
		}
		return out.String()
	}
	// where a command goes: the client's Remote after the pre-run
	host := func(args ...string) string {
		t.Helper()
		env.Client.Remote = nil
		runCLI(t, env, append(args, "vm", "ls")...)
		if env.Client.Remote == nil {
			return "local"
		}
		return env.Client.Remote.URL
	}

	run(0, "context", "create", "box", "--host", "ssh://me@box:2222", "--description", "the big one")
	run(1, "context", "create", "box", "--host", "ssh://me@box")
	run(2, "context", "create", "nohost")
	run(2, "context", "create", "bad", "--host", "tcp://box")
	run(2, "context", "create", "default", "--host", "ssh://x")
	run(2, "context", "create", "-x", "--host", "ssh://x")
	run(0, "context", "create", "other", "--host", "ssh://other")
	if got := host(); got != "local" {
		t.Fatalf("before use: %s", got)
	}
	run(0, "context", "use", "box")
	run(1, "context", "use", "nope")
	if got := host(); got != "ssh://me@box:2222" {
		t.Fatalf("current context: %s", got)
	}
	t.Setenv("BANGER_HOST", "ssh://env-host")
	if got := host(); got != "ssh://env-host" {
		t.Fatalf("BANGER_HOST over the context: %s", got)
	}
	if got := host("--host", "ssh://flag-host"); got != "ssh://flag-host" {
		t.Fatalf("--host over BANGER_HOST: %s", got)
	}
	// Shell completion (no pre-run) asks the same daemon.
	env.Client.Remote = nil
	runCLI(t, env, "__complete", "--host", "ssh://completing", "vm", "show", "")
	if env.Client.Remote != nil || env.Client.Resolve == nil {
		t.Fatalf("completion resolved before parsing --host: %+v", env.Client.Remote)
	}
	if r, err := env.Client.Resolve(); err != nil || r.URL != "ssh://completing" {
		t.Fatalf("completion goes to %+v, %v", r, err)
	}
	t.Setenv("BANGER_HOST", "")
	if code := runCLI(t, env, "--host", "box", "vm", "ls"); code != 2 || !strings.Contains(errb.String(), "ssh://[user@]host[:port]") {
		t.Fatalf("a bad --host: exit %d, %s", code, errb)
	}

	ls := run(0, "context", "ls")
	if !strings.Contains(ls, "box *") || !strings.Contains(ls, "ssh://me@box:2222") || !strings.Contains(ls, "the big one") || !strings.Contains(ls, "(local)") {
		t.Fatalf("context ls:\n%s", ls)
	}
	var views []struct {
		Name, Host string
		Current    bool
	}
	if err := json.Unmarshal([]byte(run(0, "context", "ls", "--json")), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 3 || views[0].Name != "default" || views[1].Name != "box" || !views[1].Current || views[0].Current {
		t.Fatalf("context ls --json: %+v", views)
	}
	run(1, "context", "rm", "box")
	run(1, "context", "rm", "nope")
	run(0, "context", "rm", "other")
	run(0, "context", "rm", "--force", "box")
	if got := host(); got != "local" {
		t.Fatalf("after removing the current context: %s", got)
	}
	b, err := os.ReadFile(filepath.Join(env.Paths.ConfigDir, "contexts.json"))
	if err != nil || strings.Contains(string(b), "box") {
		t.Fatalf("contexts.json: %s, %v", b, err)
	}

	// A broken contexts file stops commands with a usage error naming it.
	os.WriteFile(filepath.Join(env.Paths.ConfigDir, "contexts.json"), []byte("{"), 0o600)
	if code := runCLI(t, env, "vm", "ls"); code != 2 || !strings.Contains(errb.String(), "contexts.json") {
		t.Fatalf("broken file: exit %d, %s", code, errb)
	}
}
