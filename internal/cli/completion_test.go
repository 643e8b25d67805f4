package cli_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/rpc"
)

func TestCompletionOffersNamesFromTheDaemon(t *testing.T) {
	d := startDaemon(t, map[string]rpc.Handler{
		api.MethodVMList: func(ctx context.Context, c *rpc.Call) (any, error) {
			return append(sampleVMs, api.VM{Name: "evil\x1b[2J"}), nil
		},
		api.MethodImageList: func(ctx context.Context, c *rpc.Call) (any, error) {
			return []api.Image{{Name: "debian-bookworm"}, {Name: "alpine"}}, nil
		},
		api.MethodKernelList: func(ctx context.Context, c *rpc.Call) (any, error) {
			return []api.Kernel{{Name: "debian-cloud"}}, nil
		},
	})
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"vm", "delete", ""}, []string{"dev", "scratch"}}, // a name with control characters is never offered
		{[]string{"vm", "ssh", "s"}, []string{"scratch"}},
		{[]string{"vm", "exec", "dev", ""}, nil}, // only the first argument is a name
		{[]string{"image", "delete", "a"}, []string{"alpine"}},
		{[]string{"kernel", "show", ""}, []string{"debian-cloud"}},
		{[]string{"vm", "run", "--image", "deb"}, []string{"debian-bookworm"}},
		{[]string{"vm", "create", "--image", ""}, []string{"debian-bookworm", "alpine"}},
	}
	for _, tt := range tests {
		env, out, errb := newEnv(t, d.dial, "")
		if code := runCLI(t, env, append([]string{"__complete"}, tt.args...)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		got := lines[:len(lines)-1] // the last line is the directive
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("complete %v = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// A Tab press must not start the daemon: with none running, completion
// offers nothing and succeeds.
func TestCompletionNeverStartsTheDaemon(t *testing.T) {
	env, out, errb := newEnv(t, func(context.Context) (net.Conn, error) { return nil, client.ErrNotRunning }, "")
	env.Client.AutoStart = true
	env.Client.DaemonBin = filepath.Join(t.TempDir(), "bangerd") // does not exist: a start attempt would fail loudly
	if code := runCLI(t, env, "__complete", "vm", "delete", ""); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if out.String() != ":4\n" {
		t.Fatalf("stdout %q, want no names and the no-file directive", out.String())
	}
	if !env.Client.AutoStart {
		t.Fatal("completion changed the caller's client")
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		env, out, errb := newEnv(t, noDial(t), "")
		if code := runCLI(t, env, "completion", sh); code != 0 || !strings.Contains(out.String(), "banger") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", sh, code, out.Len(), errb.String())
		}
	}
}
