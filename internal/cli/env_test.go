package cli_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/cli"
	"github.com/banger-dev/banger/internal/rpc"
)

// -e NAME takes the host's value of NAME, as docker run does; a NAME the
// host does not have is not passed at all.
func TestEnvFlagTakesTheHostValue(t *testing.T) {
	t.Setenv("BANGER_TEST_TOKEN", "s3cret value")
	t.Setenv("BANGER_TEST_EMPTY", "")
	params := make(chan api.RunParams, 1)
	d := startDaemon(t, map[string]rpc.Handler{api.MethodVMRun: runHandler(params, []frame{{proto.FrameExit, `{"code":0}`}})})
	env, _, errb := newEnv(t, d.dial, "")
	code := runCLI(t, env, "vm", "run", "--rm", "-e", "A=1", "-e", "BANGER_TEST_TOKEN", "-e", "BANGER_TEST_UNSET_X",
		"-e", "BANGER_TEST_EMPTY", "--", "env")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := []string{"A=1", "BANGER_TEST_TOKEN=s3cret value", "BANGER_TEST_EMPTY="}
	if got := (<-params).Env; !reflect.DeepEqual(got, want) {
		t.Fatalf("env sent %q, want %q", got, want)
	}
	for _, bad := range []string{"=x", ""} {
		env, _, errb := newEnv(t, noDial(t), "")
		if code := runCLI(t, env, "vm", "exec", "dev", "-e", bad, "--", "true"); code != cli.ExitUsage || !strings.Contains(errb.String(), "want KEY=VALUE or KEY") {
			t.Errorf("-e %q: exit %d, stderr %q", bad, code, errb.String())
		}
	}
}

func TestImagePullUppercaseHint(t *testing.T) {
	d := startDaemon(t, map[string]rpc.Handler{api.MethodImagePull: func(ctx context.Context, c *rpc.Call) (any, error) {
		return nil, &api.Error{Code: api.CodeInvalid, Message: `"Library/Alpine:Edge" is not in the image catalog, and not an OCI reference: repository can only contain the characters abcdefghijklmnopqrstuvwxyz0123456789_-./`}
	}})
	for ref, hint := range map[string]string{
		"Library/Alpine:Edge":       "(image names are lowercase: try library/alpine:Edge)",
		"Debian":                    "try debian)",
		"ghcr.io/Org/App@sha256:AB": "try ghcr.io/org/app@sha256:AB)",
		"alpine:Edge":               "",
	} {
		env, _, errb := newEnv(t, d.dial, "")
		if code := runCLI(t, env, "image", "pull", ref); code != cli.ExitError {
			t.Errorf("%s: exit %d", ref, code)
		}
		if hint != "" && !strings.Contains(errb.String(), hint) || hint == "" && strings.Contains(errb.String(), "lowercase") {
			t.Errorf("%s: stderr %q, want hint %q", ref, errb.String(), hint)
		}
	}
}
