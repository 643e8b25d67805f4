package e2e

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/benchdoc"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/vmm/qemu"
)

// TestBenchWorkspace measures `banger vm workspace prepare` of a
// generated repository (10,000 files, 200 MB) into a running guest
// against the classic `git archive HEAD | ssh guest tar -x`, in the same
// run and guest, and writes the workspace section of docs/benchmarks.md.
// Run by `make bench` (BANGER_BENCH=1); timings are reported, never
// asserted.
func TestBenchWorkspace(t *testing.T) {
	rounds := benchRounds(t)
	e := newEnv(t)
	repo := filepath.Join(t.TempDir(), "big")
	start := time.Now()
	files, size := genRepo(t, repo, 10000, 200<<20)
	t.Logf("generated %d files, %d bytes in %s", files, size, time.Since(start).Round(time.Millisecond))
	e.must("vm", "create", "--name", "wsb", "--disk-size", "4G")
	defer e.banger("vm", "delete", "wsb")
	ssh := sshCommand(e, "wsb")

	var bangerT, sshT []time.Duration
	for i := 0; i < rounds; i++ {
		dst := fmt.Sprintf("/root/ssh%d", i)
		t0 := time.Now()
		pipe := fmt.Sprintf("git -C %q archive HEAD | %s 'mkdir -p %s && tar -x -C %s'", repo, ssh, dst, dst)
		if out, err := exec.Command("sh", "-c", pipe).CombinedOutput(); err != nil {
			t.Fatalf("ssh baseline: %v\n%s", err, out)
		}
		sshT = append(sshT, time.Since(t0))

		t0 = time.Now()
		e.must("vm", "workspace", "prepare", "wsb", repo, "--guest-path", fmt.Sprintf("~/ws%d", i))
		bangerT = append(bangerT, time.Since(t0))

		r := e.must("vm", "ssh", "wsb", "--", fmt.Sprintf(
			"find %s -type f | wc -l; find /root/ws%d -path '*/.git' -prune -o -type f -print | wc -l; git -C /root/ws%d status --porcelain | wc -l; rm -rf %s /root/ws%d",
			dst, i, i, dst, i))
		if got := strings.Fields(r.out); len(got) != 3 || got[0] != strconv.Itoa(files) || got[1] != strconv.Itoa(files) || got[2] != "0" {
			t.Fatalf("round %d: file counts ssh/banger and status lines: %q, want %d, %d, 0", i, r.out, files, files)
		}
		t.Logf("round %d: banger %s, ssh+tar %s", i, bangerT[i].Round(time.Millisecond), sshT[i].Round(time.Millisecond))
	}
	writeWorkspaceReport(t, files, size, bangerT, sshT)
}

// genRepo writes a repository of n files totalling about size bytes in
// 100 directories, as one commit. Contents are lines of random hex:
// text that compresses about as well as source code, never identical.
func genRepo(t *testing.T, dir string, n int, size int64) (int, int64) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	var total int64
	const hex = "0123456789abcdef"
	for i := 0; i < n; i++ {
		// Sizes vary around the mean (1/2 to 3/2 of it).
		sz := size/int64(n)/2 + rng.Int63n(size/int64(n))
		b := make([]byte, sz)
		for j := range b {
			if j%64 == 63 {
				b[j] = '\n'
			} else {
				b[j] = hex[rng.Intn(16)]
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%100), fmt.Sprintf("f%05d.txt", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		must(t, os.WriteFile(p, b, 0o644))
		total += sz
	}
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q", "-m", "generated")
	return n, total
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// sshCommand is plain OpenSSH to the VM (in the test namespace) with
// banger's key and pin, as a shell command prefix.
func sshCommand(e *env, name string) string {
	keys := &guestssh.Keys{Dir: filepath.Join(e.stateDir(), "ssh")}
	var ip string
	for _, v := range e.vmList() {
		if v["name"] == name {
			ip = fmt.Sprint(v["ip"])
		}
	}
	return fmt.Sprintf("ip netns exec %s ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s "+
		"-o StrictHostKeyChecking=yes -o HostKeyAlias=%s.vm -o LogLevel=ERROR -T root@%s",
		e.ns, keys.IdentityFile(), keys.KnownHostsFile(), name, ip)
}

func writeWorkspaceReport(t *testing.T, files int, size int64, bangerT, sshT []time.Duration) {
	var rounds []string
	for i := range bangerT {
		rounds = append(rounds, fmt.Sprintf("%.1f s vs %.1f s", bangerT[i].Seconds(), sshT[i].Seconds()))
	}
	banger, ssh := median(bangerT), median(sshT)
	body := fmt.Sprintf(`## Workspace import: banger vs git archive | ssh | tar

Written by `+"`make bench`"+` on %s (median of %d rounds; each round runs both
into the same running guest, 2 vCPU, 1 GiB, %s).

Machine: %s.

A generated repository: %d files, %.0f MB in 100 directories, one commit
(lines of random hex: compresses about as well as source code).

| what | time |
|---|---|
| `+"`git archive HEAD \\| ssh guest tar -x`"+` (files only, no history) | %.2f s |
| `+"`banger vm workspace prepare`"+` (files, history, index: git status clean) | %.2f s |

- banger / ssh+tar: **%.2f×** (goal ≤ 1.0×). Rounds, banger vs ssh+tar: %s.
- banger sends more (the history pack on top of the files) but no cipher
  runs in the guest; under emulation both are bound by the guest creating
  10,000 files, and ssh+tar also by decrypting.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), len(bangerT), "QEMU "+qemu.New(qemu.Options{}).Accel(), benchdoc.Machine(),
		files, float64(size)/1e6, ssh.Seconds(), banger.Seconds(), banger.Seconds()/ssh.Seconds(), strings.Join(rounds, "; "))
	writeBenchSection(t, "workspace", body)
}
