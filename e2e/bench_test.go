package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/qemu"
)

// TestBenchBoot measures banger against a hand-rolled QEMU boot of the
// same kernel, initramfs and image, and writes docs/benchmarks.md. It runs
// only from `make bench` (BANGER_BENCH=1): timings are reported, never
// asserted.
func TestBenchBoot(t *testing.T) {
	rounds := benchRounds(t)
	e := newEnv(t)
	var runWall, runAgent, bareAgent, bareSSH []time.Duration
	stageRe := regexp.MustCompile(`\[\s*([0-9.]+)s\] agent:`)
	for i := 0; i < rounds; i++ {
		start := time.Now()
		r := e.banger("vm", "run", "--rm", "--", "true")
		wall := time.Since(start)
		if r.code != 0 {
			t.Fatalf("vm run: exit %d\n%s", r.code, r.err)
		}
		runWall = append(runWall, wall)
		if m := stageRe.FindStringSubmatch(r.err); m != nil {
			f, _ := strconv.ParseFloat(m[1], 64)
			runAgent = append(runAgent, time.Duration(f*float64(time.Second)))
		}
		a, s := bareBoot(t, e, i)
		bareAgent = append(bareAgent, a)
		bareSSH = append(bareSSH, s)
	}
	writeReport(t, rounds, median(runWall), median(runAgent), median(bareAgent), median(bareSSH))
}

// bareBoot starts QEMU by hand with banger's artifacts (a fresh overlay,
// work disk and config drive, the cached image, kernel and initramfs) and
// returns the time to the agent answering and to the first `ssh true`.
func bareBoot(t *testing.T, e *env, round int) (agentReady, sshReady time.Duration) {
	cache := filepath.Join(os.Getenv("BANGER_E2E_CACHE"), "banger")
	img := filepath.Join(cache, "images", image.GoldenRecipe.Key+".ext4") // the default image, not the dev one beside it
	kdir := filepath.Dir(newest(t, filepath.Join(cache, "kernels", "*", "vmlinuz")))
	initrd := newest(t, filepath.Join(cache, "initrd", "*.cpio"))
	dir, _ := os.MkdirTemp("/tmp", "bgbench")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	ovl, work := uuidFor(round, 1), uuidFor(round, 2)
	must(t, image.MakeExt4(ctx, filepath.Join(dir, "overlay.ext4"), 8<<30, ovl, "o"))
	must(t, image.MakeExt4(ctx, filepath.Join(dir, "work.ext4"), 8<<30, work, "w"))
	hostPriv, hostPub, _ := guestssh.NewKeyPair("bench")
	keys := &guestssh.Keys{Dir: filepath.Join(dir, "ssh")}
	_, authorized, err := keys.EnsureUserKey()
	must(t, err)
	must(t, keys.Pin("bench", hostPub))
	mac := "52:54:00:be:0c:01"
	cfg, err := proto.EncodeConfigDrive(proto.GuestConfig{
		Version: proto.ConfigVersion, Hostname: "bench",
		Disks:          []proto.GuestDisk{{Role: proto.RoleBase}, {Role: proto.RoleOverlay, UUID: ovl}, {Role: proto.RoleWork, UUID: work}},
		Net:            &proto.GuestNet{MAC: mac, Address: "10.88.0.2/24", Gateway: "10.88.0.1"},
		AuthorizedKeys: []string{authorized},
		SSHHostKeys:    map[string]string{"ssh_host_ed25519_key": string(hostPriv), "ssh_host_ed25519_key.pub": string(hostPub)},
	})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "config.img"), cfg, 0o600))
	ns := e.ns
	sh(t, "ip", "-n", ns, "link", "add", "bbr0", "type", "bridge")
	sh(t, "ip", "-n", ns, "addr", "add", "10.88.0.1/24", "dev", "bbr0")
	sh(t, "ip", "-n", ns, "link", "set", "bbr0", "up")
	sh(t, "ip", "-n", ns, "tuntap", "add", "btap0", "mode", "tap")
	sh(t, "ip", "-n", ns, "link", "set", "btap0", "master", "bbr0", "up")
	defer exec.Command("ip", "-n", ns, "link", "del", "btap0").Run()
	defer exec.Command("ip", "-n", ns, "link", "del", "bbr0").Run()

	q := qemu.New(qemu.Options{})
	spec := vmm.Spec{Name: "bench", Dir: dir, VCPU: 2, MemoryMiB: 1024,
		Kernel: filepath.Join(kdir, "vmlinuz"), Initrd: initrd, Cmdline: "quiet",
		Disks: []vmm.Disk{{ID: "base", Path: img, ReadOnly: true},
			{ID: "overlay", Path: filepath.Join(dir, "overlay.ext4")},
			{ID: "work", Path: filepath.Join(dir, "work.ext4")},
			{ID: "config", Path: filepath.Join(dir, "config.img"), ReadOnly: true}},
		Net: &vmm.NetIface{TAP: "btap0", MAC: mac}, ConsoleLog: filepath.Join(dir, "console.log")}
	argv := append([]string{"netns", "exec", ns, "qemu-system-x86_64"}, q.Args(spec)...)
	start := time.Now()
	cmd := exec.Command("ip", argv...)
	must(t, cmd.Start())
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	for {
		conn, err := net.Dial("unix", filepath.Join(dir, "agent.sock"))
		if err == nil {
			actx, cancel := context.WithTimeout(ctx, 20*time.Second)
			c, err := client.Connect(actx, conn)
			if err == nil {
				_, err = c.Ping(actx)
				c.Close()
			}
			cancel()
			if err == nil {
				break
			}
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatal("bare boot: agent not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	agentReady = time.Since(start)
	for {
		err := exec.Command("ip", "netns", "exec", ns, "ssh", "-F", "/dev/null", "-i", keys.IdentityFile(),
			"-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile="+keys.KnownHostsFile(),
			"-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=bench.vm", "-o", "ConnectTimeout=5",
			"-o", "LogLevel=ERROR", "-T", "root@10.88.0.2", "true").Run()
		if err == nil {
			break
		}
		if time.Since(start) > 3*time.Minute {
			t.Fatal("bare boot: ssh never succeeded")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return agentReady, time.Since(start)
}

func writeReport(t *testing.T, rounds int, runWall, runAgent, bareAgent, bareSSH time.Duration) {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`model name\s*:\s*(.*)`).FindSubmatch(b); m != nil {
			cpu = string(m[1])
		}
	}
	qv, _ := exec.Command("qemu-system-x86_64", "--version").Output()
	kv, _ := exec.Command("uname", "-r").Output()
	accel := qemu.New(qemu.Options{}).Accel()
	overhead := float64(runAgent-bareAgent) / float64(bareAgent) * 100
	ratio := float64(runWall) / float64(bareSSH)
	s := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	report := fmt.Sprintf(`## Boot: banger vs hand-rolled QEMU

Written by `+"`make bench`"+` on %s (median of %d rounds; each round runs both
paths back to back on the same machine, with the same kernel, initramfs and
image). Guests: 2 vCPU, 1 GiB.

Machine: %s, %d cores, host kernel %s, %s, acceleration: %s.

| what | time |
|---|---|
| `+"`banger vm run --rm -- true`"+`, wall time (CLI start → VM deleted → exit) | %s |
| banger: vm.run request received → guest agent ready (daemon clock) | %s |
| bare QEMU (same artifacts, hand-rolled): start → guest agent ready | %s |
| bare QEMU: start → first successful `+"`ssh true`"+` (sshd ready) | %s |

- banger's own overhead to agent-ready: **%+.1f %%** (goal ≤ 10 %%).
- `+"`vm run --rm -- true`"+` / (hand-rolled boot + `+"`ssh true`"+`): **%.2f×** (goal ≤ 0.6×): `+"`vm run`"+`
  execs through the agent, which is up long before sshd.
`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), rounds, cpu, runtime.NumCPU(), strings.TrimSpace(string(kv)),
		strings.SplitN(string(qv), "\n", 2)[0], accel, s(runWall), s(runAgent), s(bareAgent), s(bareSSH), overhead, ratio)
	writeBenchSection(t, "boot", report)
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	must(t, err)
	return filepath.Dir(wd)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func newest(t *testing.T, glob string) string {
	m, _ := filepath.Glob(glob)
	if len(m) == 0 {
		t.Fatalf("nothing matches %s: run `make e2e` once to build the artifacts", glob)
	}
	sort.Slice(m, func(i, j int) bool {
		a, _ := os.Stat(m[i])
		b, _ := os.Stat(m[j])
		return a.ModTime().After(b.ModTime())
	})
	return m[0]
}

func uuidFor(round, n int) string {
	return fmt.Sprintf("b0000000-0000-4000-8000-%04d%08d", round, n)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sh(t *testing.T, name string, args ...string) { run(t, name, args...) }
