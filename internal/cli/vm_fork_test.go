package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
)

func TestVMForkFlagsReachRunF(t *testing.T) {
	got, err := parseOnly(t, newVMForkCmd, "dev")
	if err != nil || got == nil || got.Params != (api.ForkParams{Name: "dev", Count: 1}) {
		t.Fatalf("fork dev: %+v %v", got, err)
	}
	got, err = parseOnly(t, newVMForkCmd, "dev", "--count", "3", "--name", "try", "--from", "base", "--json")
	if err != nil || got == nil || got.Params != (api.ForkParams{Name: "dev", Count: 3, As: "try", From: "base"}) || !got.JSON {
		t.Fatalf("fork dev --count 3 --name try --from base --json: %+v %v", got, err)
	}
	for _, args := range [][]string{{}, {"a", "b"}, {"dev", "--count", "0"}, {"dev", "-n", "17"}, {"dev", "--name", "Bad_Name"}} {
		got, err := parseOnly(t, newVMForkCmd, args...)
		wantUsage(t, args, got, err)
	}
}

type forkClient struct {
	got api.ForkParams
	res api.ForkResult
}

func (f *forkClient) VMFork(_ context.Context, p api.ForkParams, _ func(api.Progress)) (api.ForkResult, error) {
	f.got = p
	return f.res, nil
}

func TestVMForkRunPrintsChildren(t *testing.T) {
	fc := &forkClient{res: api.ForkResult{Parent: "dev", PausedMillis: 212, Children: []api.VM{
		{Name: "try-1", State: "running", IP: "10.77.0.3"}, {Name: "try-2", State: "running", IP: "10.77.0.4"}}}}
	var out, errb bytes.Buffer
	opts := &vmForkOptions{IO: &iostreams{Out: &out, Err: &errb}, Client: fc, Params: api.ForkParams{Name: "dev", Count: 2, As: "try"}}
	if err := vmForkRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "try-2  running  10.77.0.4") || !strings.Contains(errb.String(), "dev was paused for 212 ms") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	out.Reset()
	opts.JSON = true
	if err := vmForkRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"paused_ms": 212`) || !strings.Contains(out.String(), `"name": "try-1"`) {
		t.Errorf("--json:\n%s", out.String())
	}
}
