package cli_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/cli"
)

// A mistyped repository used to boot a VM and run "./myrepo-typo -- make
// test" in it. It is a usage error naming the path, before any daemon
// call; --dry-run says the same.
func TestVMRunMissingRepositoryIsAUsageError(t *testing.T) {
	for _, args := range [][]string{
		{"vm", "run", "./myrepo-typo", "--", "make", "test"},
		{"vm", "run", "--rm", "./myrepo-typo", "--", "make", "test"},
		{"vm", "run", "--dry-run", "./myrepo-typo", "--", "make", "test"},
		{"vm", "run", "./myrepo-typo", "--dry-run", "--", "make", "test"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dialed := false
			env, out, errb := newEnv(t, func(context.Context) (net.Conn, error) {
				dialed = true
				return nil, errors.New("must not dial")
			}, "")
			if code := runCLI(t, env, args...); code != cli.ExitUsage {
				t.Fatalf("exit %d, want %d (stderr %q)", code, cli.ExitUsage, errb.String())
			}
			if want := "banger: repository ./myrepo-typo does not exist"; !strings.HasPrefix(errb.String(), want) {
				t.Fatalf("stderr %q, want %q...", errb.String(), want)
			}
			if dialed || out.Len() != 0 {
				t.Fatalf("dialed=%v stdout=%q", dialed, out.String())
			}
		})
	}
}
