// Package e2e boots real guests under QEMU through the real banger CLI and
// daemon, inside a network namespace the tests create (the host's own
// network is never touched). Run with `make e2e` (needs root, qemu,
// mmdebstrap; the setup script installs them).
package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// env is one isolated banger installation: its own XDG dirs and netns,
// sharing only the artifact cache (images, kernels) between runs.
type env struct {
	t    *testing.T
	bin  string
	ns   string
	home string
	vars []string
}

var shared *env

// TestMain runs the tests only with BANGER_E2E=1 (as `make e2e`, `make
// bench` and CI set it); then a missing prerequisite (root, BANGER_BIN,
// qemu, ...) fails a test instead of skipping it. Unset, it says why
// and runs none, so that `go test ./...` reports this package as
// "ok ... [no tests to run]" rather than a bare "ok" that reads as a
// pass (skipping each test still prints "ok" without -v).
func TestMain(m *testing.M) {
	switch v := os.Getenv("BANGER_E2E"); v {
	case "1":
	case "":
		flag.Parse()
		fmt.Fprintln(os.Stderr, "e2e: skipped: BANGER_E2E=1 is not set; these tests boot real guests: run `make e2e` (needs root and qemu)")
		if err := flag.Set("test.run", "^$"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(2)
		}
	default:
		fmt.Fprintf(os.Stderr, "e2e: BANGER_E2E=%q: want 1 (run the tests) or unset (skip them)\n", v)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// newEnv creates the namespace and directories; cleanup stops the daemon
// (by PID) and deletes the namespace with everything banger made in it.
func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("e2e tests need root (network namespaces, bridge, TAP)")
	}
	bin := os.Getenv("BANGER_BIN")
	if bin == "" {
		t.Fatal("BANGER_BIN not set: run `make e2e`")
	}
	cache := os.Getenv("BANGER_E2E_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "banger-e2e-cache")
	}
	home := t.TempDir()
	e := &env{t: t, bin: bin, home: home, ns: fmt.Sprintf("bangere2e%d", os.Getpid()%100000)}
	// A short runtime path keeps unix socket paths under 108 bytes.
	rt, err := os.MkdirTemp("/tmp", "bge2e")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(rt, 0o700)
	e.vars = append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_STATE_HOME="+filepath.Join(home, "state"),
		"XDG_CACHE_HOME="+cache,
		"XDG_RUNTIME_DIR="+rt,
	)
	os.MkdirAll(filepath.Join(home, "config", "banger"), 0o700)
	// 2 vCPUs boot systemd 5-10 s faster under TCG than 1.
	os.WriteFile(filepath.Join(home, "config", "banger", "config.toml"), []byte("[snapshots]\nwarm = false\n[vm_defaults]\nvcpu = 2\nmemory = 1024\n"), 0o600)
	e.provision()
	run(t, "ip", "netns", "add", e.ns)
	t.Cleanup(func() {
		e.stopDaemon()
		// Recovered boot stalls and warm starts that fell back cold pass
		// unseen otherwise; their vCPU state or error is the clue.
		if b, err := os.ReadFile(filepath.Join(e.stateDir(), "bangerd.log")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "boot stalled") || strings.Contains(line, "warm start failed") || strings.Contains(line, "template capture failed") {
					t.Logf("bangerd: %s", line)
				}
			}
		}
		killLeftovers(t, rt)
		exec.Command("ip", "netns", "del", e.ns).Run()
		os.RemoveAll(rt)
	})
	return e
}

// provision builds (or takes from the shared cache) the default image and
// kernel with a daemon in the host's namespace — the test namespace has no
// route to the package mirror — then stops that daemon. Everything after
// runs inside the namespace.
func (e *env) provision() {
	e.t.Helper()
	for _, args := range [][]string{{"kernel", "import"}, {"image", "build"}} {
		start := time.Now()
		if out, err := e.hostBanger(args...).CombinedOutput(); err != nil {
			e.t.Fatalf("banger %v: %v\n%s", args, err, out)
		}
		e.t.Logf("provision: banger %v in %s", args, time.Since(start).Round(time.Millisecond))
	}
	e.stopDaemon()
}

// hostBanger is the CLI in the host's namespace, for calls that touch no
// network (provisioning downloads packages; daemon stop uses the socket).
func (e *env) hostBanger(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(e.bin, "banger"), args...)
	cmd.Env = e.vars
	return cmd
}

func (e *env) runtimeDir() string {
	for _, v := range e.vars {
		if strings.HasPrefix(v, "XDG_RUNTIME_DIR=") {
			return filepath.Join(strings.TrimPrefix(v, "XDG_RUNTIME_DIR="), "banger")
		}
	}
	return ""
}

func (e *env) stateDir() string { return filepath.Join(e.home, "state", "banger") }

func (e *env) stopDaemon() {
	pidb, err := os.ReadFile(filepath.Join(e.runtimeDir(), "bangerd.pid"))
	if err != nil {
		return
	}
	if out, err := e.hostBanger("daemon", "stop").CombinedOutput(); err != nil {
		e.t.Logf("daemon stop: %v: %s", err, out)
	}
	var pid int
	fmt.Sscan(string(pidb), &pid)
	if pid > 0 && exec.Command("kill", "-0", fmt.Sprint(pid)).Run() == nil {
		exec.Command("kill", "-9", fmt.Sprint(pid)).Run()
	}
}

// result of one CLI call.
type result struct {
	out, err string
	code     int
}

// banger runs the CLI inside the namespace.
func (e *env) banger(args ...string) result {
	return e.bangerIn("", args...)
}

func (e *env) bangerIn(stdin string, args ...string) result {
	e.t.Helper()
	argv := append([]string{"netns", "exec", e.ns, filepath.Join(e.bin, "banger")}, args...)
	cmd := exec.Command("ip", argv...)
	cmd.Env = e.vars
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run banger %v: %v", args, err)
	}
	e.t.Logf("banger %s → exit %d in %s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	for _, line := range strings.Split(errb.String(), "\n") {
		if strings.Contains(line, "warning: ") { // e.g. a boot stall the daemon recovered from
			e.t.Logf("  stderr: %s", line)
		}
	}
	return result{out.String(), errb.String(), code}
}

// must runs the CLI and fails the test unless it exits 0.
func (e *env) must(args ...string) result {
	e.t.Helper()
	r := e.banger(args...)
	if r.code != 0 {
		e.t.Fatalf("banger %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.out, r.err)
	}
	return r
}

func (e *env) vmList() []map[string]any {
	e.t.Helper()
	var vms []map[string]any
	r := e.must("vm", "ls", "--json")
	if err := json.Unmarshal([]byte(r.out), &vms); err != nil {
		e.t.Fatalf("vm ls --json: %v\n%s", err, r.out)
	}
	return vms
}

// assertClean checks nothing of any VM is left: rows, TAPs, VMM
// processes, per-VM files and sockets.
func (e *env) assertClean() {
	e.t.Helper()
	if vms := e.vmList(); len(vms) != 0 {
		e.t.Errorf("VMs left: %v", vms)
	}
	out, _ := exec.Command("ip", "-n", e.ns, "-o", "link", "show").CombinedOutput()
	if strings.Contains(string(out), "bgt") {
		e.t.Errorf("TAP left in namespace:\n%s", out)
	}
	for _, dir := range []string{filepath.Join(e.stateDir(), "vms"), filepath.Join(e.runtimeDir(), "vms")} {
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			e.t.Errorf("per-VM files left in %s: %d entries", dir, len(ents))
		}
	}
	ps, _ := exec.Command("pgrep", "-f", e.runtimeDir()+"/vms/").Output()
	if len(bytes.TrimSpace(ps)) != 0 {
		e.t.Errorf("VMM processes left: %s", ps)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// killLeftovers ends VMM processes this test's daemon started (their
// command lines name the test's runtime directory) that a failed test left
// running, so one failure does not leak guests into later runs.
func killLeftovers(t *testing.T, runtimeDir string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(runtimeDir+"/")) {
			continue
		}
		t.Logf("killing leftover process %d: %s", pid, bytes.ReplaceAll(cmdline[:min(len(cmdline), 80)], []byte{0}, []byte{' '}))
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
