package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/rpc"
)

func TestUnknownSubcommandIsAUsageErrorWithASuggestion(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"vm", "lst"}, `unknown command "lst" for "banger vm"; did you mean ls?`},
		{[]string{"vm", "lst", "--json"}, `unknown command "lst" for "banger vm"; did you mean ls?`},
		{[]string{"vm", "delet", "dev"}, "did you mean delete?"},
		{[]string{"imgae", "ls"}, `unknown command "imgae" for "banger"; did you mean image?`},
		{[]string{"kernel", "lis"}, "did you mean ls?"},
		{[]string{"vm", "workspace", "exprt", "dev"}, "did you mean export?"},
		{[]string{"xyzzy"}, `unknown command "xyzzy" for "banger" (see`},
		{[]string{"help", "vm", "lst"}, "did you mean ls?"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			env, out, errb := newEnv(t, noDial(t), "")
			if code := runCLI(t, env, tt.args...); code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d (stderr %q, stdout %q)", code, cli.ExitUsage, errb.String(), out.String())
			}
			if !strings.HasPrefix(errb.String(), "banger: ") || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("stderr %q, want %q", errb.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout %q: an unknown command prints no help", out.String())
			}
		})
	}
}

// An argument error names the command once: "banger: vm logs: …", not
// "banger: banger vm logs: …".
func TestArgumentErrorNamesTheCommandOnce(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"vm", "logs"}, "banger: vm logs: expected a VM name (see `banger vm logs --help`)\n"},
		{[]string{"kernel", "delete", "a", "b"}, "banger: kernel delete: expected a kernel name (see `banger kernel delete --help`)\n"},
		{[]string{"image", "ls", "--json", "-q"}, "banger: image ls: give --json or -q, not both\n"},
		{[]string{"image", "build", "a", "b"}, "banger: image build: at most 1 argument(s) (see `banger image build --help`)\n"},
	} {
		env, _, errb := newEnv(t, noDial(t), "")
		if code := runCLI(t, env, tt.args...); code != cli.ExitUsage || errb.String() != tt.want {
			t.Errorf("banger %s: exit %d, stderr %q, want %q", strings.Join(tt.args, " "), code, errb.String(), tt.want)
		}
	}
}

func TestGroupWithoutSubcommandShowsHelp(t *testing.T) {
	env, out, _ := newEnv(t, noDial(t), "")
	if code := runCLI(t, env, "vm"); code != 0 || !strings.Contains(out.String(), "Available Commands") {
		t.Fatalf("exit %d, stdout %q", code, out.String())
	}
}

// A VM name that is no DNS label is a usage error the CLI finds itself,
// for vm run as for vm create (vm run keeps 125 for what stops banger
// running a valid command line).
func TestBadVMNameIsAUsageError(t *testing.T) {
	for _, args := range [][]string{
		{"vm", "create", "--name", "Dev_1"},
		{"vm", "run", "--name", "Dev_1", "--", "true"},
		{"vm", "run", "--name", "-dev", "--rm", "--", "true"},
	} {
		env, _, errb := newEnv(t, noDial(t), "")
		if code := runCLI(t, env, args...); code != cli.ExitUsage || !strings.Contains(errb.String(), "is not a DNS label") {
			t.Errorf("%v: exit %d, stderr %q; want %d", args, code, errb.String(), cli.ExitUsage)
		}
	}
}

func TestVersionWithoutDaemon(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		env, out, errb := newEnv(t, func(context.Context) (net.Conn, error) {
			return nil, client.ErrNotRunning
		}, "")
		env.Client.AutoStart = true // version must still not start it
		env.Client.DaemonBin = filepath.Join(t.TempDir(), "bangerd-that-must-not-run")
		agent := filepath.Join(t.TempDir(), "banger-agent") // stands in for a `make build` agent
		os.WriteFile(agent, []byte("#!/bin/sh\n[ \"$1\" = version ] && echo banger-agent v7.7.7\n"), 0o755)
		os.MkdirAll(env.Paths.ConfigDir, 0o700)
		os.WriteFile(env.Paths.ConfigFile(), []byte("agent_bin = \""+agent+"\"\n"), 0o600)
		if code := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		lines := strings.Split(out.String(), "\n")
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "banger ") || !strings.Contains(lines[0], "go1.") ||
			!strings.Contains(lines[1], "not running") || !strings.Contains(lines[2], "v7.7.7 ("+agent+")") {
			t.Fatalf("%v: stdout %q", args, out.String())
		}
	}
}

func TestVersionFromRunningDaemon(t *testing.T) {
	d := startDaemon(t, map[string]rpc.Handler{api.MethodStatus: func(ctx context.Context, c *rpc.Call) (any, error) {
		return api.Status{PID: 77, Version: "v1.2.3", APIVersion: api.Version, AgentVersion: "v1.2.2"}, nil
	}})
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "version", "--json"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r struct {
		CLI    struct{ Version string }
		Daemon struct {
			Running bool
			Version string
			PID     int
		}
		Agent struct{ Version, From string }
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.CLI.Version == "" || !r.Daemon.Running || r.Daemon.Version != "v1.2.3" || r.Daemon.PID != 77 ||
		r.Agent.Version != "v1.2.2" || r.Agent.From != "daemon" {
		t.Fatalf("version --json = %s", out.String())
	}
}
