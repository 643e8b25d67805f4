package cli_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/rpc"
)

func TestMemoryAndDiskSizes(t *testing.T) {
	tests := []struct {
		args     []string
		wantMiB  int
		wantDisk string
	}{
		{[]string{"vm", "create", "--memory", "2G"}, 2048, ""},
		{[]string{"vm", "create", "--memory", "1.5G"}, 1536, ""},
		{[]string{"vm", "create", "--memory", "512M"}, 512, ""},
		{[]string{"vm", "create", "--memory", "2048"}, 2048, ""}, // plain numbers stay MiB
		{[]string{"vm", "create", "--memory=1.5g", "--disk-size", "1.5T"}, 1536, "1.5T"},
		{[]string{"vm", "set", "dev", "--memory", "4G", "--disk-size", "20G"}, 4096, "20G"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var got struct {
				MemoryMiB int    `json:"memory_mib"`
				DiskSize  string `json:"disk_size"`
			}
			h := func(ctx context.Context, c *rpc.Call) (any, error) {
				if err := c.Decode(&got); err != nil {
					return nil, err
				}
				return api.VM{Name: "dev", VCPU: 1, MemoryMiB: got.MemoryMiB, DiskBytes: 8 << 30}, nil
			}
			d := startDaemon(t, map[string]rpc.Handler{api.MethodVMCreate: h, api.MethodVMSet: h})
			env, _, errb := newEnv(t, d.dial, "")
			if code := runCLI(t, env, tt.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if got.MemoryMiB != tt.wantMiB || got.DiskSize != tt.wantDisk {
				t.Fatalf("daemon got memory %d MiB, disk %q; want %d, %q", got.MemoryMiB, got.DiskSize, tt.wantMiB, tt.wantDisk)
			}
		})
	}
}

func TestBadSizesAreUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  []string
	}{
		{[]string{"vm", "create", "--memory", "lots"}, []string{`invalid argument "lots" for "--memory"`, "512M, 1.5G", "a plain number is MiB"}},
		{[]string{"vm", "create", "--memory", "1.3G"}, []string{"not a whole number of MiB"}},
		{[]string{"vm", "create", "--memory", "100M"}, []string{"--memory 100M: must be at least 256 MiB"}},
		{[]string{"vm", "run", "--memory", "0.125G", "--", "true"}, []string{"--memory 0.125G: must be at least 256 MiB"}},
		{[]string{"vm", "create", "--disk-size", "8X"}, []string{`invalid argument "8X" for "--disk-size"`}},
		{[]string{"vm", "create", "--disk-size", "8192"}, []string{"8 KiB is below the minimum of 1 GiB", "8192G or 8192M?"}},
		{[]string{"vm", "run", "--disk-size", "big", "--", "true"}, []string{`"big"`}},
		{[]string{"vm", "create", "--disk-size", "20T"}, []string{"20 TiB is above the maximum of 16 TiB"}},
		{[]string{"vm", "set", "dev", "--memory", "2Q"}, []string{`invalid argument "2Q"`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			env, _, errb := newEnv(t, func(context.Context) (net.Conn, error) { return nil, errors.New("must not dial") }, "")
			if code := runCLI(t, env, tt.args...); code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d: %s", code, cli.ExitUsage, errb.String())
			}
			for _, m := range tt.msg {
				if !strings.Contains(errb.String(), m) {
					t.Errorf("stderr %q lacks %q", errb.String(), m)
				}
			}
		})
	}
}
