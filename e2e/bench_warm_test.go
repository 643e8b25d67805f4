package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchWarm compares cold boots with warm starts from a start-up
// snapshot: `vm run --rm -- true` wall time and agent-ready, and the
// proportional set size (PSS) of 5 warm vs 5 cold VMs, and writes the
// "warm" section of docs/benchmarks.md. Only from `make bench`
// (BANGER_BENCH=1); reported, never asserted.
func TestBenchWarm(t *testing.T) {
	rounds := benchRounds(t)
	e := newEnv(t)
	dir := warmDir(t)
	os.WriteFile(filepath.Join(e.home, "config", "banger", "config.toml"),
		[]byte("[snapshots]\nwarm = true\n[vm_defaults]\nvcpu = 2\nmemory = 1024\n"), 0o600)
	agentRe := regexp.MustCompile(`\[\s*([0-9.]+)s\] agent:`)
	var warmRuns int
	var started *int // counts the warm rounds that really started warm
	runOnce := func(args ...string) (wall, agent time.Duration) {
		start := time.Now()
		r := e.banger(append([]string{"vm", "run", "--rm"}, append(args, "--", "true")...)...)
		wall = time.Since(start)
		if r.code != 0 {
			t.Fatalf("vm run: exit %d\n%s", r.code, r.err)
		}
		if len(args) == 0 && started != nil {
			if strings.Contains(r.err, "warm from start-up snapshot") && !strings.Contains(r.err, "warning:") {
				*started++
			} else {
				t.Logf("this run did not start warm:\n%s", r.err)
			}
		}
		if m := agentRe.FindStringSubmatch(r.err); m != nil {
			f, _ := strconv.ParseFloat(m[1], 64)
			agent = time.Duration(f * float64(time.Second))
		}
		return wall, agent
	}
	runOnce() // no template yet: a cold boot, and the template is captured after it
	waitTemplate(t, dir, 3*time.Minute)
	started = &warmRuns
	var coldWall, coldAgent, warmWall, warmAgent []time.Duration
	for i := 0; i < rounds; i++ {
		w, a := runOnce("--cold")
		coldWall, coldAgent = append(coldWall, w), append(coldAgent, a)
		w, a = runOnce()
		warmWall, warmAgent = append(warmWall, w), append(warmAgent, a)
	}
	cold := fleetPSS(t, e, "cold", "--cold")
	warm := fleetPSS(t, e, "warm")
	tmplBytes := allocatedBytes(dir)

	s := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	mib := func(kb int64) string { return fmt.Sprintf("%d MiB", kb>>10) }
	report := fmt.Sprintf(`## Warm starts: start-up snapshot vs cold boot

Written by `+"`make bench`"+` on %s (median of %d rounds, cold and warm back to back).
Guests: 2 vCPU, 1 GiB; snapshot point C (the template booted to the end: systemd settled, sshd listening).

| what | cold | warm |
|---|---|---|
| `+"`vm run --rm -- true`"+`, wall time | %s | %s |
| vm.run request → guest agent ready (daemon clock) | %s | %s |
| `+"`vm create`"+` → sshd ready (daemon clock, median of 5) | %s | %s |
| 5 VMs, Σ PSS 20 s after the last create (`+"`/proc/PID/smaps_rollup`"+`) | %s | %s |
| per VM PSS | %s | %s |

- warm/cold wall: **%.2f×**; PSS warm/cold: **%.2f×** (the template — memory file and
  disks — takes another %s on disk; its memory is in the page cache while clones map it).
- %d of %d warm rounds and %d of 5 warm VMs started from the snapshot (a warm start that fails boots cold, with a warning).
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), rounds,
		s(median(coldWall)), s(median(warmWall)), s(median(coldAgent)), s(median(warmAgent)), s(cold.sshd), s(warm.sshd),
		mib(cold.pssKB), mib(warm.pssKB), cold.each, warm.each,
		float64(median(warmWall))/float64(median(coldWall)), float64(warm.pssKB)/float64(cold.pssKB), mib(tmplBytes>>10), warmRuns, rounds, warm.warmCount())
	writeBenchSection(t, "warm", report)
}

// fleet is what fleetPSS measured of 5 VMs.
type fleet struct {
	pssKB   int64
	each    string        // per VM PSS
	sshd    time.Duration // median create → sshd ready (daemon clock)
	started []string      // how each started (vm show)
}

// fleetPSS creates 5 VMs (with extra create flags), waits 20 s, sums their
// VMMs' PSS (kB) and deletes them.
func fleetPSS(t *testing.T, e *env, prefix string, flags ...string) fleet {
	var f fleet
	var each []string
	var names []string
	var sshd []time.Duration
	sshRe := regexp.MustCompile(`\[\s*([0-9.]+)s\] ssh: sshd ready`)
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		r := e.must(append([]string{"vm", "create", "--name", name}, flags...)...)
		if m := sshRe.FindStringSubmatch(r.err); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			sshd = append(sshd, time.Duration(v*float64(time.Second)))
		}
		names = append(names, name)
	}
	f.sshd = median(sshd)
	time.Sleep(20 * time.Second)
	for _, name := range names {
		var v struct {
			PID         int    `json:"pid"`
			StartedFrom string `json:"started_from"`
		}
		json.Unmarshal([]byte(e.must("vm", "show", name, "--json").out), &v)
		kb := pssKB(t, v.PID)
		f.pssKB += kb
		each = append(each, fmt.Sprint(kb>>10))
		f.started = append(f.started, v.StartedFrom)
	}
	for _, name := range names {
		e.must("vm", "delete", name)
	}
	f.each = strings.Join(each, ", ") + " MiB"
	return f
}

// warmCount is how many of a fleet started from a snapshot.
func (f fleet) warmCount() int {
	n := 0
	for _, s := range f.started {
		if strings.HasPrefix(s, "snapshot ") {
			n++
		}
	}
	return n
}

// pssKB is a process's Pss from /proc/PID/smaps_rollup, in kB.
func pssKB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatalf("pss of pid %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no Pss in smaps_rollup of pid %d", pid)
	return 0
}

// allocatedBytes is the space a file tree takes on disk.
func allocatedBytes(root string) int64 {
	var n int64
	filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}
