package e2e

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestBenchEnvd times what issue 15's performance goals name, with
// E2B's SDK against the CLI on the same machine, and writes the envd
// section of docs/benchmarks.md: Sandbox.create() → first
// commands.run('true') against `vm run --rm -- true`, and
// commands.run('true') on a running sandbox against `vm exec` (of the
// same `bash -l -c true` the SDK sends, and of a bare `true`). Reported,
// never asserted.
func TestBenchEnvd(t *testing.T) {
	rounds := benchRounds(t)
	s := newSDKEnv(t, "")
	const n = 10
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	var createToFirst, cliRun, sdkRun, execLogin, execTrue []time.Duration
	for i := 0; i < rounds; i++ {
		var b struct {
			SandboxID     string
			CreateToFirst float64
			Runs          []float64
		}
		s.node(&b, "envd.mjs", "bench", fmt.Sprint(n))
		createToFirst = append(createToFirst, ms(b.CreateToFirst))
		for _, r := range b.Runs {
			sdkRun = append(sdkRun, ms(r))
		}
		for j := 0; j < n; j++ {
			t0 := time.Now()
			s.must("vm", "exec", b.SandboxID, "--", "bash", "-l", "-c", "true")
			execLogin = append(execLogin, time.Since(t0))
			t0 = time.Now()
			s.must("vm", "exec", b.SandboxID, "--", "true")
			execTrue = append(execTrue, time.Since(t0))
		}
		s.must("vm", "delete", b.SandboxID)
		t0 := time.Now()
		s.must("vm", "run", "--rm", "--", "true")
		cliRun = append(cliRun, time.Since(t0))
	}
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	msf := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	report := fmt.Sprintf(`## E2B SDK: commands in a sandbox (envd)

Written by `+"`make bench`"+` on %s (medians; %d rounds, %d commands each;
cold boots, 2 vCPU / 1 GiB; %d cores shared with whatever else runs). The
e2b SDK pinned in e2e/e2bsdk, run by node in the test's namespace against
`+"`[api] listen`"+`; SDK times are measured inside node, CLI times are the
CLI's wall time (a process per call). `+"`commands.run(cmd)`"+` runs
`+"`bash -l -c cmd`"+` as user root; the running-sandbox rows are taken after
`+"`systemctl is-system-running --wait`"+` (a fresh sandbox's guest is still
booting, which slows its first commands several-fold under TCG).

| what | time |
|---|---|
| `+"`Sandbox.create()`"+` → first `+"`commands.run('true')`"+` result | %s |
| `+"`vm run --rm -- true`"+` (boot, run, delete) | %s |
| `+"`commands.run('true')`"+` on a running sandbox | %s |
| `+"`vm exec NAME -- bash -l -c true`"+` | %s |
| `+"`vm exec NAME -- true`"+` | %s |

- create → first command: **%.2f×** `+"`vm run --rm -- true`"+` (goal ≤ 1.10×; the
  CLI's path also deletes the VM, the SDK's does not).
- `+"`commands.run('true')`"+`: **%.2f×** `+"`vm exec`"+` of the same command, **%.2f×**
  `+"`vm exec -- true`"+` (goal ≤ 1.5×).
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), rounds, n, runtime.NumCPU(),
		sec(median(createToFirst)), sec(median(cliRun)), msf(median(sdkRun)), msf(median(execLogin)), msf(median(execTrue)),
		float64(median(createToFirst))/float64(median(cliRun)),
		float64(median(sdkRun))/float64(median(execLogin)), float64(median(sdkRun))/float64(median(execTrue)))
	writeBenchSection(t, "envd", report)
}
