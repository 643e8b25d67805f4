package client

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/config"
)

// startPaths points XDG at a fresh tree, so a daemon started from here
// finds the same paths as the client.
func startPaths(t *testing.T) config.Paths {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "bgd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	t.Setenv("HOME", base)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(base, "config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(base, "state"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "cache"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(base, "run"))
	os.MkdirAll(filepath.Join(base, "run"), 0o700)
	p, err := config.DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A daemon that fails at start-up: the CLI says why, not only "see the
// log". The stand-in prints what bangerd prints for a broken config.toml
// (its log line, then "bangerd: <reason>"; internal/daemon's
// TestMainPrintsItsStartupError checks that bangerd does).
func TestStartDaemonShowsTheReason(t *testing.T) {
	p := startPaths(t)
	bin := filepath.Join(t.TempDir(), "bangerd")
	script := "#!/bin/sh\necho 'time=x level=ERROR msg=config err=\"bad\"' >&2\n" +
		"echo 'bangerd: read config " + p.ConfigFile() + ": toml: line 1 (last key \"boot_timeout\"): time: invalid duration \"soon\"' >&2\nexit 1\n"
	os.WriteFile(bin, []byte(script), 0o755)
	// An earlier start's lines in the log are not this start's reason.
	os.MkdirAll(p.StateDir, 0o700)
	os.WriteFile(p.DaemonLog(), []byte("bangerd: an old failure\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := (&Client{Paths: p, DaemonBin: bin}).StartDaemon(ctx)
	if err == nil {
		t.Fatal("StartDaemon succeeded")
	}
	msg := err.Error()
	want := "bangerd exited during start-up (exit status 1): read config " + p.ConfigFile() +
		": toml: line 1 (last key \"boot_timeout\"): time: invalid duration \"soon\" (log: " + p.DaemonLog() + ")"
	if msg != want {
		t.Fatalf("error\n%s\nwant\n%s", msg, want)
	}
}

// Without a "bangerd:" line the last lines of this start are quoted,
// control characters defused.
func TestStartDaemonQuotesTheLastLines(t *testing.T) {
	p := startPaths(t)
	bin := filepath.Join(t.TempDir(), "bangerd")
	script := "#!/bin/sh\necho 'level=INFO msg=starting'\nprintf 'level=ERROR msg=\"disk \\033[31mgone\"\\n' >&2\nexit 3\n"
	os.WriteFile(bin, []byte(script), 0o755)
	err := (&Client{Paths: p, DaemonBin: bin}).StartDaemon(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "disk ?[31mgone") ||
		!strings.Contains(err.Error(), "msg=starting") {
		t.Fatalf("StartDaemon = %v", err)
	}
}
