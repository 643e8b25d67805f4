package cli_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/rpc"
)

// sshWorld is a fake daemon on a real socket in a safe runtime dir (the
// CLI's own dial path and checks) and a fake ssh on PATH that records
// its argv and exits with a chosen code.
type sshWorld struct {
	env      *cli.Env
	out, err *bytes.Buffer
	argvFile string
	mu       sync.Mutex
	calls    []api.SSHParams
}

func newSSHWorld(t *testing.T, sshExit string, handle func(api.SSHParams, *rpc.Call) (any, error)) *sshWorld {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "bgs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	paths := config.Paths{ConfigDir: filepath.Join(base, "config"), StateDir: filepath.Join(base, "state"),
		CacheDir: filepath.Join(base, "cache"), RuntimeDir: filepath.Join(base, "run")}
	if err := paths.EnsureRuntimeDir(); err != nil {
		t.Fatal(err)
	}
	w := &sshWorld{argvFile: filepath.Join(base, "ssh-argv")}
	l, err := rpc.Listen(paths.Socket())
	if err != nil {
		t.Fatal(err)
	}
	srv := &rpc.Server{Log: slog.New(slog.DiscardHandler), Handlers: map[string]rpc.Handler{
		api.MethodVMSSH: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.SSHParams
			if err := c.Decode(&p); err != nil {
				return nil, err
			}
			w.mu.Lock()
			w.calls = append(w.calls, p)
			w.mu.Unlock()
			return handle(p, c)
		},
	}}
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { l.Close() })
	bin := filepath.Join(base, "bin")
	os.Mkdir(bin, 0o755)
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > " + w.argvFile + "\nexit " + sshExit + "\n"
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	w.out, w.err = &bytes.Buffer{}, &bytes.Buffer{}
	w.env = &cli.Env{In: strings.NewReader(""), Out: w.out, Err: w.err, Paths: paths, Client: &client.Client{Paths: paths}}
	return w
}

func (w *sshWorld) sshArgv() ([]string, bool) {
	b, err := os.ReadFile(w.argvFile)
	if err != nil {
		return nil, false
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), true
}

func sshInfo(user string) api.SSHInfo {
	return api.SSHInfo{VM: api.VM{Name: "dev"}, User: user, Host: "10.77.0.2", HostKeyAlias: "dev.vm",
		IdentityFile: "/s/ssh/id_ed25519", KnownHostsFile: "/s/ssh/known_hosts"}
}

// Issue 11's proof of concept: a fake daemon answering vm.ssh with an
// ssh option as the user name. The CLI refuses and never runs ssh.
func TestVMSSHRefusesAMaliciousDaemonAnswer(t *testing.T) {
	w := newSSHWorld(t, "0", func(api.SSHParams, *rpc.Call) (any, error) {
		return sshInfo("-oProxyCommand=sh -c 'touch /tmp/banger-pwned'"), nil
	})
	code := runCLI(t, w.env, "vm", "ssh", "dev", "--", "true")
	if code == 0 || !strings.Contains(w.err.String(), "refusing to run ssh") || !strings.Contains(w.err.String(), "POSIX user name") {
		t.Fatalf("exit %d, stderr %q", code, w.err.String())
	}
	if argv, ran := w.sshArgv(); ran {
		t.Fatalf("ssh ran with %q", argv)
	}
}

// The waiting line from the daemon is shown once; several arguments
// after -- arrive as one quoted command after -- and the destination.
func TestVMSSHShowsTheWaitAndQuotesArgv(t *testing.T) {
	w := newSSHWorld(t, "0", func(p api.SSHParams, c *rpc.Call) (any, error) {
		if !p.Wait {
			t.Errorf("vm ssh did not ask the daemon to wait: %+v", p)
		}
		c.Progress("ssh", "waiting for dev's sshd…")
		return sshInfo("root"), nil
	})
	if code := runCLI(t, w.env, "vm", "ssh", "dev", "--", "printf", `%s\n`, "a b", "$HOME"); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, w.err.String())
	}
	if w.err.String() != "banger: waiting for dev's sshd…\n" {
		t.Errorf("stderr %q, want the one waiting line", w.err.String())
	}
	argv, _ := w.sshArgv()
	if tail := strings.Join(argv[len(argv)-3:], " | "); tail != `-- | root@10.77.0.2 | printf '%s\n' 'a b' '$HOME'` {
		t.Errorf("ssh argv ends %s", tail)
	}
	// One argument is passed as the command line it is.
	runCLI(t, w.env, "vm", "ssh", "dev", "--", "cd repo && make")
	if argv, _ := w.sshArgv(); argv[len(argv)-1] != "cd repo && make" {
		t.Errorf("single argument became %q", argv[len(argv)-1])
	}
}

// ssh exiting 255 is diagnosed by the daemon's probe: the message says
// what failed, and speaks of host keys only when the probe saw another.
func TestVMSSHFailureSaysWhatFailed(t *testing.T) {
	for _, c := range []struct {
		name  string
		check error
		want  string
	}{
		{"refused", &api.Error{Code: api.CodeSSHRefused, Message: "vm dev: connection to 10.77.0.2:22 refused (sshd is not listening)"}, "refused"},
		{"mismatch", &api.Error{Code: api.CodeSSHKeyMismatch, Message: "vm dev: sshd at 10.77.0.2:22 presented host key SHA256:a, not the pinned SHA256:b: refused as a possible man-in-the-middle"}, "man-in-the-middle"},
		{"sshd fine", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newSSHWorld(t, "255", func(p api.SSHParams, _ *rpc.Call) (any, error) {
				if p.Check {
					if c.check != nil {
						return nil, c.check
					}
				}
				return sshInfo("root"), nil
			})
			if code := runCLI(t, w.env, "vm", "ssh", "dev", "--", "true"); code != 255 {
				t.Fatalf("exit %d, want ssh's 255", code)
			}
			msg := w.err.String()
			if c.want == "" {
				if msg != "" {
					t.Errorf("stderr %q, want nothing (the remote command may have exited 255)", msg)
				}
				return
			}
			if !strings.Contains(msg, c.want) || strings.Contains(msg, "host key") != (c.name == "mismatch") {
				t.Errorf("stderr %q, want %q (host keys only for a mismatch)", msg, c.want)
			}
		})
	}
}
