package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

func TestVMSnapshotLsPrintsTableAndJSON(t *testing.T) {
	d := startDaemon(t, map[string]rpc.Handler{
		api.MethodVMSnapshotList: func(ctx context.Context, c *rpc.Call) (any, error) {
			return []api.Snapshot{{VM: "dev", Name: "before", Bytes: 3 << 20, VMM: "qemu", VMMVersion: "7.2.22", BangerVersion: "v0.13"}}, nil
		},
	})
	env, out, errb := newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "snapshot", "ls", "dev"); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"NAME", "before", "3 MiB", "qemu 7.2.22", "v0.13"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ls output lacks %q:\n%s", want, out.String())
		}
	}
	env, out, _ = newEnv(t, d.dial, "")
	if code := runCLI(t, env, "vm", "snapshot", "ls", "dev", "--json"); code != 0 || !strings.Contains(out.String(), `"vmm_version": "7.2.22"`) {
		t.Fatalf("ls --json: exit %d: %s", code, out.String())
	}
}

func TestSnapshotNamesComplete(t *testing.T) {
	d := startDaemon(t, map[string]rpc.Handler{
		api.MethodVMList: func(ctx context.Context, c *rpc.Call) (any, error) { return sampleVMs, nil },
		api.MethodVMSnapshotList: func(ctx context.Context, c *rpc.Call) (any, error) {
			var p api.NameParams
			if err := c.Decode(&p); err != nil || p.Name != "dev" {
				return []api.Snapshot{}, nil
			}
			return []api.Snapshot{{Name: "before"}, {Name: "after"}}, nil
		},
	})
	for args, want := range map[string]string{
		"vm snapshot restore dev b": "before",
		"vm snapshot rm d":          "dev",
		"vm snapshot create s":      "scratch",
	} {
		env, out, errb := newEnv(t, d.dial, "")
		a := append([]string{"__complete"}, strings.Fields(args)...)
		if strings.HasSuffix(args, " ") {
			a = append(a, "")
		}
		if code := runCLI(t, env, a...); code != 0 {
			t.Fatalf("%s: exit %d: %s", args, code, errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if got := strings.Join(lines[:len(lines)-1], ","); got != want {
			t.Errorf("complete %q = %q, want %q", args, got, want)
		}
	}
}
