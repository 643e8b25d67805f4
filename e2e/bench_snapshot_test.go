package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/vmm/qemu"
)

// TestBenchSnapshot measures pause/resume, stop --save/start and snapshot
// create/restore of a running 2 vCPU / 1 GiB guest through the CLI, with a
// cold stop + start of the same VM in the same rounds as the baseline, and
// writes the snapshot section of docs/benchmarks.md. Run by `make bench`;
// timings are reported, never asserted.
func TestBenchSnapshot(t *testing.T) {
	rounds := benchRounds(t)
	e := newEnv(t)
	const vm = "sb"
	e.must("vm", "create", "--name", vm, "--vcpu", "2", "--memory", "1G")
	defer e.banger("vm", "delete", vm)
	timed := func(args ...string) time.Duration {
		t.Helper()
		t0 := time.Now()
		e.must(args...)
		return time.Since(t0)
	}
	// untilExec is how long after t0 a command first runs in the guest.
	untilExec := func(t0 time.Time) time.Duration {
		t.Helper()
		for time.Since(t0) < 2*time.Minute {
			if e.banger("vm", "exec", vm, "--", "true").code == 0 {
				return time.Since(t0)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the guest never ran a command")
		return 0
	}
	var pause, resume, save, startSaved, coldStop, coldStart, snapCreate, snapRestore []time.Duration
	var snapBytes int64
	for i := 0; i < rounds; i++ {
		pause = append(pause, timed("vm", "pause", vm))
		resume = append(resume, timed("vm", "resume", vm))

		save = append(save, timed("vm", "stop", "--save", vm))
		t0 := time.Now()
		e.must("vm", "start", vm)
		startSaved = append(startSaved, untilExec(t0))

		coldStop = append(coldStop, timed("vm", "stop", vm))
		t0 = time.Now()
		e.must("vm", "start", vm)
		coldStart = append(coldStart, untilExec(t0))

		name := fmt.Sprintf("b%d", i)
		snapCreate = append(snapCreate, timed("vm", "snapshot", "create", vm, name))
		snapRestore = append(snapRestore, timed("vm", "snapshot", "restore", "--force", vm, name))
		var snaps []struct {
			Name  string `json:"name"`
			Bytes int64  `json:"bytes"`
		}
		must(t, json.Unmarshal([]byte(e.must("vm", "snapshot", "ls", vm, "--json").out), &snaps))
		for _, s := range snaps {
			if s.Name == name {
				snapBytes = s.Bytes
			}
		}
		e.must("vm", "snapshot", "rm", vm, name)
	}
	med := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 0, 64) + " ms"
	}
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	qv, _ := exec.Command("qemu-system-x86_64", "--version").Output()
	report := fmt.Sprintf(`## Pause, save and snapshots

Written by `+"`make bench`"+` on %s (median of %d rounds). One running guest,
2 vCPU / 1 GiB, idle systemd; every time is the CLI's wall time (process
start to exit, so ~15–30 ms of it is the CLI and the socket). %d cores,
%s, %s.

| what | time |
|---|---|
| `+"`vm pause`"+` | %s |
| `+"`vm resume`"+` (includes setting the guest's clock through the agent) | %s |
| pause → resume round trip | %s |
| `+"`vm stop --save`"+` (pause, save state, copy nothing, VMM gone) | %s |
| `+"`vm start`"+` of the saved VM → first command runs | %s |
| baseline: `+"`vm stop`"+` (guest shutdown) | %s |
| baseline: `+"`vm start`"+` cold boot (it waits for sshd) → first command runs | %s |
| `+"`vm snapshot create`"+` (guest paused for state + disk copies) | %s |
| `+"`vm snapshot restore --force`"+` | %s |
| size of one snapshot on disk (state + sparse disk copies) | %s |

- A saved VM continues in **%.2f×** the time of a cold boot to its first command.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), rounds, runtime.NumCPU(),
		strings.SplitN(string(qv), "\n", 2)[0], qemu.New(qemu.Options{}).Accel(),
		ms(med(pause)), ms(med(resume)), ms(med(pause)+med(resume)), sec(med(save)), sec(med(startSaved)),
		sec(med(coldStop)), sec(med(coldStart)), sec(med(snapCreate)), sec(med(snapRestore)),
		config.FormatSize(snapBytes), float64(med(startSaved))/float64(med(coldStart)))
	writeBenchSection(t, "snapshot", report)
}
