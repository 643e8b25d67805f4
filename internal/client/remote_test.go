package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
)

func TestParseHost(t *testing.T) {
	good := map[string]Remote{
		"ssh://box":             {Host: "box"},
		"ssh://me@box:2222":     {User: "me", Host: "box", Port: "2222"},
		"ssh://root@10.0.0.1/":  {User: "root", Host: "10.0.0.1"},
		"ssh://me@[fd00::1]:22": {User: "me", Host: "fd00::1", Port: "22"},
		"ssh://build_box.lan":   {Host: "build_box.lan"},
	}
	for in, want := range good {
		r, err := ParseHost(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		want.URL = in
		if *r != want {
			t.Errorf("%s: got %+v, want %+v", in, *r, want)
		}
	}
	for _, in := range []string{"box", "tcp://box:1", "ssh://", "ssh://-oProxyCommand=x", "ssh://-l@box", "ssh://me:pw@box",
		"ssh://box:0", "ssh://box:x", "ssh://box/path", "ssh://box?x=1", "ssh://b;ox", "ssh://b ox"} {
		if _, err := ParseHost(in); err == nil || !strings.Contains(err.Error(), "ssh://[user@]host[:port]") {
			t.Errorf("%s: err %v, want a refusal that shows the form", in, err)
		}
	}
}

func TestSSHArgsAndProxyCommand(t *testing.T) {
	r := &Remote{URL: "ssh://me@box:2222", User: "me", Host: "box", Port: "2222"}
	got := strings.Join(r.sshArgs("/run/u/banger", false), " ")
	want := "-o ControlMaster=auto -o ControlPersist=10m -o ControlPath=/run/u/banger/ssh-%C -o ConnectTimeout=20 -l me -p 2222 -T -- box banger daemon dial-stdio --no-start"
	if got != want {
		t.Errorf("sshArgs:\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(r.sshArgs("", true), " "); got != "-o ConnectTimeout=20 -l me -p 2222 -T -- box banger daemon dial-stdio" {
		t.Errorf("sshArgs without a control dir: %s", got)
	}
	pc := r.ProxyCommand("/opt/my ssh/ssh", "/run/u/banger")
	want = "'/opt/my ssh/ssh' -o ControlMaster=auto -o ControlPersist=10m -o ControlPath=/run/u/banger/ssh-%%C -o ConnectTimeout=20 -l me -p 2222 -W [%h]:%p -- box"
	if pc != want {
		t.Errorf("ProxyCommand:\n got %s\nwant %s", pc, want)
	}
}

// fakeSSH puts an `ssh` on PATH that runs script (sh) instead of
// connecting, and returns a client for ssh://me@box.
func fakeSSH(t *testing.T, script string) *Client {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	run := filepath.Join(t.TempDir(), "run")
	r, err := ParseHost("ssh://me@box")
	if err != nil {
		t.Fatal(err)
	}
	return &Client{Paths: config.Paths{RuntimeDir: run}, Remote: r, AutoStart: true}
}

func TestDialRemoteSplicesAfterTheGreeting(t *testing.T) {
	c := fakeSSH(t, fmt.Sprintf(`echo "$*" >&2; printf '{"banger":"dial-stdio","api_version":%d,"version":"test"}\n'; exec cat`, api.Version))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ping\n" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	cc := conn.(*cmdConn)
	if argv := cc.readStderr(); !strings.Contains(argv, "-l me -T -- box banger daemon dial-stdio") || strings.Contains(argv, "--no-start") {
		t.Errorf("ssh argv %q", argv)
	}
	conn.Close()
	if code, _ := cc.exit(5 * time.Second); code != 0 {
		t.Errorf("ssh did not end on Close: %d", code)
	}
}

func TestDialRemoteFailures(t *testing.T) {
	cases := []struct {
		name, script string
		check        func(error) bool
		want         string
	}{
		{"other API version", `printf '{"banger":"dial-stdio","api_version":99,"version":"v9"}\n'; exec cat`,
			func(err error) bool {
				var v *VersionError
				return errors.As(err, &v) && v.Remote == 99 && v.Local == api.Version
			},
			fmt.Sprintf("speaks API version 99 (banger v9), this banger speaks API version %d", api.Version)},
		{"no banger", `echo 'bash: line 1: banger: command not found' >&2; exit 127`, nil, "no banger on the PATH of ssh://me@box: install banger and bangerd there"},
		{"host key changed", `echo '@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @' >&2; echo 'Host key verification failed.' >&2; exit 255`,
			nil, "cannot reach ssh://me@box over ssh: @ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\nHost key verification failed."},
		{"daemon cannot start", `echo 'banger: bangerd exited during start-up: bad config.toml' >&2; exit 4`, nil,
			"the banger daemon on ssh://me@box cannot start: bangerd exited during start-up: bad config.toml"},
		{"not running", `exit 3`, func(err error) bool { return errors.Is(err, ErrNotRunning) }, "daemon is not running on ssh://me@box"},
		{"older banger", `echo 'Error: unknown command "dial-stdio" for "banger daemon"' >&2; exit 1`, nil, "older than daemon dial-stdio"},
		{"chatty login", `echo 'Welcome to box'; exec cat`, nil, `unexpected output before banger's greeting: "Welcome to box"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeSSH(t, tc.script)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := c.dial(ctx)
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.check != nil && !tc.check(err)) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Status does not start a remote daemon: dial-stdio gets --no-start.
func TestRemoteStatusDoesNotStart(t *testing.T) {
	c := fakeSSH(t, `case "$*" in *--no-start) exit 3;; esac; echo started >&2; exit 1`)
	_, err := c.Status(context.Background())
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Status: %v", err)
	}
}
