package e2e

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestBenchE2B compares E2B's SDK on banger's HTTP API with the CLI on
// the same machine and writes the e2b section of docs/benchmarks.md:
// Sandbox.create() (boot to agent-ready, as the SDK sees it) against
// `vm run --rm -- true` (boot, one command, delete) and `vm create`
// (which also waits for sshd); a control-plane round trip
// (Sandbox.getInfo) against `vm show`. Timings are reported, never
// asserted. The in-sandbox API (commands.run) is not in this build, so
// create → first command cannot be timed through the SDK yet.
func TestBenchE2B(t *testing.T) {
	rounds := benchRounds(t)
	s := newSDKEnv(t, "")
	var create, info, kill, run, cliCreate, show, curl []time.Duration
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	for i := 0; i < rounds; i++ {
		var b struct{ Create, Kill float64 }
		s.node(&b, "control.mjs", "bench")
		create, kill = append(create, ms(b.Create)), append(kill, ms(b.Kill))

		t0 := time.Now()
		s.must("vm", "run", "--rm", "--", "true")
		run = append(run, time.Since(t0))

		t0 = time.Now()
		s.must("vm", "create", "--name", "cli")
		cliCreate = append(cliCreate, time.Since(t0))
		// both round trips on the same idle guest (a booting one takes
		// the CPU the daemon answers with)
		var ib struct{ Info float64 }
		s.node(&ib, "control.mjs", "infobench", "cli")
		info = append(info, ms(ib.Info))
		t0 = time.Now()
		for j := 0; j < 20; j++ {
			s.must("vm", "show", "cli")
		}
		show = append(show, time.Since(t0)/20)
		t0 = time.Now()
		for j := 0; j < 20; j++ {
			s.curl("GET", "/sandboxes/cli", "", 200)
		}
		curl = append(curl, time.Since(t0)/20)
		s.must("vm", "delete", "cli")
	}
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	msf := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	report := fmt.Sprintf(`## E2B SDK on the HTTP API

Written by `+"`make bench`"+` on %s (median of %d rounds; cold boots,
2 vCPU / 1 GiB; %d cores shared with whatever else runs). The e2b SDK
%s from npm, run by node in the test's namespace against `+"`[api] listen`"+`
on its loopback; SDK times are measured inside node (its start-up
excluded), CLI times are the CLI's wall time.

| what | time |
|---|---|
| `+"`Sandbox.create()`"+` → returns (VM booted, agent ready) | %s |
| `+"`vm run --rm -- true`"+` (boot, run, delete) | %s |
| `+"`vm create`"+` (boot, and wait for sshd) | %s |
| `+"`Sandbox.kill()`"+` | %s |
| `+"`Sandbox.getInfo()`"+` round trip (one connection kept) | %s |
| `+"`vm show`"+` (a CLI process per call) | %s |
| `+"`curl`"+` GET /sandboxes/{id} (a curl process per call, as `+"`vm show`"+`) | %s |

- `+"`Sandbox.create()`"+` takes **%.2f×** the time of `+"`vm run --rm -- true`"+`, which
  also runs a command and deletes the VM. The goal (the API adds ≤ 10 %%
  to the CLI's path) is for create → first `+"`commands.run`"+`, which needs the
  in-sandbox API (envd), not in this build.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), rounds, runtime.NumCPU(), e2bVersion(t),
		sec(median(create)), sec(median(run)), sec(median(cliCreate)), sec(median(kill)),
		msf(median(info)), msf(median(show)), msf(median(curl)), float64(median(create))/float64(median(run)))
	writeBenchSection(t, "e2b", report)
}
