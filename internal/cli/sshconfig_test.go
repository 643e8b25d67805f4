package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/rpc"
)

// runLocal runs a command that needs no daemon, with HOME in a temp dir.
func runLocal(t *testing.T, home string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("HOME", home)
	var out, errb bytes.Buffer
	env := &cli.Env{In: strings.NewReader(""), Out: &out, Err: &errb,
		Paths: config.Paths{ConfigDir: filepath.Join(home, ".config", "banger")}, Client: &client.Client{}}
	code := cli.Run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestSSHConfigCommand(t *testing.T) {
	home := t.TempDir()
	user := filepath.Join(home, ".ssh", "config")
	os.MkdirAll(filepath.Dir(user), 0o700)
	os.WriteFile(user, []byte("Host mine\n  User me\n"), 0o600)
	target := filepath.Join(home, ".config", "banger", "ssh_config")

	code, out, _ := runLocal(t, home, "ssh-config")
	if code != 0 || !strings.Contains(out, "Include "+target) || !strings.Contains(out, "not included") {
		t.Fatalf("ssh-config: %d %q", code, out)
	}
	if code, out, _ = runLocal(t, home, "ssh-config", "--install"); code != 0 || !strings.Contains(out, "added") {
		t.Fatalf("--install: %d %q", code, out)
	}
	if code, out, _ = runLocal(t, home, "ssh-config", "--install"); code != 0 || !strings.Contains(out, "already includes") {
		t.Fatalf("second --install: %d %q", code, out)
	}
	b, _ := os.ReadFile(user)
	if !strings.HasSuffix(string(b), "Host mine\n  User me\n") || strings.Count(string(b), "Include ") != 1 {
		t.Fatalf("config after install:\n%s", b)
	}
	if code, _, errs := runLocal(t, home, "ssh-config", "--install", "--uninstall"); code != cli.ExitUsage || !strings.Contains(errs, "exclude") {
		t.Fatalf("both flags: %d %q", code, errs)
	}
	if code, out, _ = runLocal(t, home, "ssh-config", "--uninstall"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("--uninstall: %d %q", code, out)
	}
	if b, _ := os.ReadFile(user); string(b) != "Host mine\n  User me\n" {
		t.Fatalf("config after uninstall:\n%q", b)
	}

	// A broken region is reported, and the file is left as it is.
	broken := "# >>> banger >>>\nHost mine\n"
	os.WriteFile(user, []byte(broken), 0o600)
	if code, _, errs := runLocal(t, home, "ssh-config", "--install"); code != cli.ExitError || !strings.Contains(errs, "malformed banger region") {
		t.Fatalf("malformed: %d %q", code, errs)
	}
	if b, _ := os.ReadFile(user); string(b) != broken {
		t.Fatal("malformed file changed")
	}
}

func TestNetworkShowAndTeardownRender(t *testing.T) {
	objs := []api.NetworkObject{{Kind: "link", Name: "banger0", Detail: "bridge, up"}, {Kind: "nft-table", Name: "ip banger"}}
	f := startDaemon(t, map[string]rpc.Handler{
		api.MethodNetworkShow: func(context.Context, *rpc.Call) (any, error) {
			return api.NetworkState{Bridge: "banger0", Subnet: "10.77.0.0/24", Gateway: "10.77.0.1", DNS: "10.77.0.1:42069", Objects: objs}, nil
		},
		api.MethodNetworkTeardown: func(context.Context, *rpc.Call) (any, error) {
			return api.NetworkTeardown{Removed: objs}, nil
		},
	})
	code, out, errs := runWith(t, f, "network", "show")
	if code != 0 || !strings.Contains(out, "dns 10.77.0.1:42069") || !strings.Contains(out, "nft-table  ip banger") {
		t.Fatalf("network show: %d %q %q", code, out, errs)
	}
	code, out, _ = runWith(t, f, "network", "show", "--json")
	if code != 0 || !strings.Contains(out, `"kind": "link"`) {
		t.Fatalf("network show --json: %d %q", code, out)
	}
	code, out, _ = runWith(t, f, "network", "teardown")
	if code != 0 || !strings.Contains(out, "removed 2 objects") {
		t.Fatalf("network teardown: %d %q", code, out)
	}
}

func runWith(t *testing.T, f *fakeDaemon, args ...string) (int, string, string) {
	t.Helper()
	env, out, errb := newEnv(t, f.dial, "")
	code := runCLI(t, env, args...)
	return code, out.String(), errb.String()
}
