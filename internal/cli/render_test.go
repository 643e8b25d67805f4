package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/rpc"
)

// hostile is what a guest (or a daemon speaking for one) could put in a
// process name, an image's config or an error: cursor moves, a carriage
// return that overwrites the line, a bell, a window-title OSC and a
// right-to-left override. (Invalid UTF-8 cannot cross the JSON wire.)
const hostile = "evil\x1b[2J\rok\a\x1b]0;pwned\x07\u202e"

func TestTablesEscapeControlCharacters(t *testing.T) {
	vm := api.VM{Name: "dev" + hostile, State: "running", Image: hostile, LastError: "boom" + hostile}
	d := startDaemon(t, map[string]rpc.Handler{
		api.MethodVMList: func(ctx context.Context, c *rpc.Call) (any, error) { return []api.VM{vm}, nil },
		api.MethodVMShow: func(ctx context.Context, c *rpc.Call) (any, error) { return vm, nil },
		api.MethodVMPorts: func(ctx context.Context, c *rpc.Call) (any, error) {
			return []api.Port{{Proto: "tcp", Address: "0.0.0.0", Port: 22, Process: hostile, PID: 9}}, nil
		},
		api.MethodImageList: func(ctx context.Context, c *rpc.Call) (any, error) {
			return []api.Image{{Name: "img", Source: hostile}}, nil
		},
		api.MethodImageShow: func(ctx context.Context, c *rpc.Call) (any, error) {
			return api.ImageInfo{Image: api.Image{Name: "img"}, Runtime: api.ImageRuntime{Env: []string{"A=" + hostile}, WorkingDir: hostile}}, nil
		},
		api.MethodVMStop: func(ctx context.Context, c *rpc.Call) (any, error) { return vm, nil },
		api.MethodVMStart: func(ctx context.Context, c *rpc.Call) (any, error) {
			c.Progress("boot", hostile)
			return nil, &api.Error{Code: api.CodeInternal, Message: "failed: " + hostile}
		},
	})
	for _, args := range [][]string{{"vm", "ls"}, {"vm", "ls", "-q"}, {"vm", "show", "dev"}, {"vm", "ports", "dev"},
		{"image", "ls"}, {"image", "show", "img"}, {"vm", "start", "dev"}, {"vm", "stop", "dev"}} {
		env, out, errb := newEnv(t, d.dial, "")
		runCLI(t, env, args...)
		all := out.String() + errb.String()
		if strings.ContainsAny(all, "\x1b\r\a\u202e") {
			t.Errorf("%v: raw control characters reached the terminal: %q", args, all)
		}
		if !strings.Contains(all, `evil\x1b[2J\rok\a\x1b]0;pwned\a\u202e`) {
			t.Errorf("%v: want the hostile text escaped visibly, got %q", args, all)
		}
	}
	// --json stays JSON, escaped by encoding/json and exact once decoded.
	env, out, _ := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "ports", "dev", "--json"); code != 0 {
		t.Fatal(code)
	}
	var ports []api.Port
	if err := json.Unmarshal(out.Bytes(), &ports); err != nil || ports[0].Process != hostile {
		t.Fatalf("--json: %v, %q", err, out.String())
	}
}

func TestListQuietPrintsNamesOnly(t *testing.T) {
	d := startDaemon(t, map[string]rpc.Handler{
		api.MethodVMList: func(ctx context.Context, c *rpc.Call) (any, error) { return sampleVMs, nil },
		api.MethodImageList: func(ctx context.Context, c *rpc.Call) (any, error) {
			return []api.Image{{Name: "debian-bookworm"}, {Name: "alpine"}}, nil
		},
		api.MethodKernelList: func(ctx context.Context, c *rpc.Call) (any, error) {
			return []api.Kernel{{Name: "debian-cloud", Release: "6.1"}}, nil
		},
	})
	for args, want := range map[string]string{
		"vm ls -q":       "dev\nscratch\n",
		"vm ls --quiet":  "dev\nscratch\n",
		"image ls -q":    "debian-bookworm\nalpine\n",
		"kernel list -q": "debian-cloud\n",
	} {
		env, out, errb := newEnv(t, d.dial, "")
		if code := runCLI(t, env, strings.Fields(args)...); code != 0 || out.String() != want {
			t.Errorf("%s: exit %d, stdout %q (stderr %q), want %q", args, code, out.String(), errb.String(), want)
		}
	}
	env, _, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "ls", "-q", "--json"); code != cli.ExitUsage {
		t.Errorf("-q --json: exit %d, stderr %q", code, errb.String())
	}
}
