package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchFork forks a running 1 GiB guest (booted, idle) into 3
// children and writes the "fork" section of docs/benchmarks.md: wall time
// of `vm fork --count 3` (it returns once every child runs with its own
// identity, its agent answering), how long the parent was paused, and the
// PSS of parent + 3 children against the parent alone, 20 s after the
// fork. Only from `make bench` (BANGER_BENCH=1); reported, never asserted.
func TestBenchFork(t *testing.T) {
	rounds := benchRounds(t)
	e := newEnv(t)
	e.must("vm", "create", "--name", "dev")
	pidOf := func(name string) int {
		var v struct {
			PID int `json:"pid"`
		}
		json.Unmarshal([]byte(e.must("vm", "show", name, "--json").out), &v)
		return v.PID
	}
	time.Sleep(20 * time.Second) // the parent idle, as its children will be
	var walls, pauses []time.Duration
	var parentKB, kidsKB, addedKB []int64
	var kidsEach, parts, phases []string
	shared, copied := 0, 0
	var templates, loads []string
	tmplRe := regexp.MustCompile(`shared file for the children \(([0-9.]+m?s), of which the template's start and load ([0-9.]+m?s)\)`)
	for i := 0; i < rounds; i++ {
		alone := pssKB(t, pidOf("dev"))
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			loads = append(loads, strings.Fields(string(b))[0])
		}
		start := time.Now()
		r := e.must("vm", "fork", "dev", "--count", "3", "--name", "b", "--json")
		walls = append(walls, time.Since(start))
		if m := tmplRe.FindStringSubmatch(r.err); m != nil {
			shared++
			templates = append(templates, m[1]+" (load "+m[2]+")")
		}
		if strings.Contains(r.err, "copied from the parent's shared RAM") {
			copied++
		}
		phases = append(phases, forkPhases(r.err))
		var res struct {
			PausedMS int64 `json:"paused_ms"`
		}
		json.Unmarshal([]byte(r.out), &res)
		pauses = append(pauses, time.Duration(res.PausedMS)*time.Millisecond)
		time.Sleep(20 * time.Second)
		var kids int64
		var each []string
		for _, k := range []string{"b-1", "b-2", "b-3"} {
			kb := pssKB(t, pidOf(k))
			kids += kb
			each = append(each, fmt.Sprint(kb>>10))
		}
		parentKB, kidsKB = append(parentKB, alone), append(kidsKB, kids)
		addedKB = append(addedKB, pssKB(t, pidOf("dev"))+kids-alone)
		kidsEach = append(kidsEach, strings.Join(each, "/"))
		parts = append(parts, pssParts(t, pidOf("b-1")))
		for _, k := range []string{"b-1", "b-2", "b-3"} {
			e.must("vm", "delete", k)
		}
	}
	mib := func(kb []int64) string {
		var parts []string
		for _, v := range kb {
			parts = append(parts, fmt.Sprint(v>>10))
		}
		return strings.Join(parts, ", ") + " MiB"
	}
	tmplNote := ""
	if shared > 0 {
		tmplNote = fmt.Sprintf("; a template file was made in %d (%s)", shared, strings.Join(templates, ", "))
	}
	var ratios []string
	for i := range parentKB {
		ratios = append(ratios, fmt.Sprintf("%.2f×", float64(kidsKB[i])/float64(parentKB[i])))
	}
	report := fmt.Sprintf(`## Fork: a running VM into 3 children

Written by `+"`make bench`"+` on %s (%d rounds; the same idle parent, children deleted between rounds).
Guests: 2 vCPU, 1 GiB, booted to systemd and sshd; TCG on the shared 2-core machine.

| what | result (median) | goal |
|---|---|---|
| `+"`vm fork dev --count 3`"+` wall, until all three run with their identity (agent ready) | %.2f s | ≤ 2 s |
| parent paused (device state save, memory copy, disk copies) | %d ms | ≤ 300 ms |

PSS (`+"`/proc/PID/smaps_rollup`"+`) 20 s after each fork, per round — parent alone before the
fork: %s; the 3 children together: %s (each: %s); children ÷ parent: %s (goal ≤ 0.5×).
A second figure, not the goal's: what the fork added to the PSS of all four (parent after +
children − parent before): %s. Where one child's PSS is (b-1, per round): %s.
The parent's memory was copied at the instant into memory the children map (no template) in
%d of %d rounds%s. Wall times per round: %s. From the progress lines, per round: %s.
Host load average (1 min) at each fork: %s — other engineers' guests share the machine's 2
cores, so the times are far above an idle host's.

Notes (ARCHITECTURE.md, *Forks*). The pause is the device state saved without RAM (~100 KB,
x-ignore-shared), the parent's touched RAM (~205 MiB of its memfd) copied into a memfd of the
daemon's, and the disk copies; no template VMM is started. The rest of the wall time is the
three children: a restore (~0.1 s each) and then their guests — three TCG guests on 2 cores
retranslating their code from empty caches — answering the agent's clock, reseed and
reidentify calls. PSS: each child maps ~90 MiB of the fork point's pages (shared by the three),
and holds its own TCG translation cache (~41–48 MiB of 64) and ~26 MiB of QEMU; the parent's
~205 MiB of RAM and full 64 MiB cache are its own. The translation caches alone are ~0.4× of
the parent, so the 0.5× goal is out of reach under TCG without slowing every child's exec
(smaller caches measured: vmm/qemu/restoreargs.go); under KVM there would be no cache.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), rounds, median(walls).Seconds(), median(pauses).Milliseconds(),
		mib(parentKB), mib(kidsKB), strings.Join(kidsEach, "; "), strings.Join(ratios, ", "), mib(addedKB),
		strings.Join(parts, "; "), copied, rounds, tmplNote, durs(walls), strings.Join(phases, "; "), strings.Join(loads, ", "))
	writeBenchSection(t, "fork", report)
	e.must("vm", "delete", "dev")
}

func durs(ds []time.Duration) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%.1f s", d.Seconds()))
	}
	return strings.Join(out, ", ")
}

// pssParts splits a child QEMU's PSS (/proc/PID/smaps) into the fork
// point's memory it maps (the daemon's memfd, or a template's file), TCG's
// translation cache (anonymous rwx mappings) and the rest, in MiB.
func pssParts(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatalf("smaps of pid %d: %v", pid, err)
	}
	var mem, tcg, rest int64
	kind := &rest
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && len(f[1]) == 4:
			switch name := strings.Join(f[5:], " "); {
			case strings.Contains(name, "banger-fork") || strings.HasSuffix(name, "/mem"):
				kind = &mem
			case f[1] == "rwxp" && name == "":
				kind = &tcg
			default:
				kind = &rest
			}
		case len(f) >= 2 && f[0] == "Pss:":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			*kind += n
		}
	}
	return fmt.Sprintf("fork point's memory %d, TCG cache %d, the rest %d MiB", mem>>10, tcg>>10, rest>>10)
}

// forkPhases reads a fork's progress lines ("[  1.2s] stage: text"):
// when the parent's pause ended, the last child's restore began, the
// last child's RNG was reseeded (its agent answered the clock and the
// reseed) and the last child ran with its identity.
func forkPhases(progress string) string {
	re := regexp.MustCompile(`\[\s*([0-9.]+)s\] (\w+): (.*)`)
	var paused, restore, reseed, running string
	for _, line := range strings.Split(progress, "\n") {
		m := re.FindStringSubmatch(line)
		switch {
		case m == nil:
		case m[2] == "snapshot" && strings.Contains(m[3], "was paused for"):
			paused = m[1]
		case m[2] == "restore":
			restore = m[1]
		case strings.Contains(m[3], "RNG reseeded"):
			reseed = m[1]
		case m[2] == "fork" && strings.Contains(m[3], " running at "):
			running = m[1]
		}
	}
	return fmt.Sprintf("pause over at %s s, last restore begun %s s, last reseed %s s, last child running %s s", paused, restore, reseed, running)
}
