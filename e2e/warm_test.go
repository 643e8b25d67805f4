package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// warmDir is where the daemon keeps its start-up snapshots (templates):
// the shared artifact cache, so the test starts from none and removes
// what it made.
func warmDir(t *testing.T) string {
	cache := os.Getenv("BANGER_E2E_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "banger-e2e-cache")
	}
	dir := filepath.Join(cache, "banger", "warm")
	os.RemoveAll(dir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// waitTemplate waits for a complete template (its meta.json) in dir.
func waitTemplate(t *testing.T, dir string, within time.Duration) string {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		m, _ := filepath.Glob(filepath.Join(dir, "*", "meta.json"))
		for _, p := range m {
			if !strings.HasSuffix(filepath.Dir(p), ".tmp") {
				return filepath.Base(filepath.Dir(p))
			}
		}
	}
	t.Fatalf("no warm-start template in %s within %v", dir, within)
	return ""
}

// The first `vm run` boots cold and leaves a start-up snapshot behind; the
// second starts warm from it with the same result. Two warm VMs have their
// own identity: hostname, address, MAC, SSH host key (pinned: vm ssh
// works), machine-id, random numbers and DNS name. (boot_id is the
// template's: the kernel sets it once per boot and offers no way to
// change it, ARCHITECTURE.md "Warm starts".)
func TestWarmStart(t *testing.T) {
	e := newEnv(t)
	// the host side reaches banger's DNS on the bridge address locally
	run(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
	dir := warmDir(t)
	os.WriteFile(filepath.Join(e.home, "config", "banger", "config.toml"),
		[]byte("[snapshots]\nwarm = true\n[vm_defaults]\nvcpu = 2\nmemory = 1024\n"), 0o600)
	cmd := []string{"vm", "run", "--rm", "--", "sh", "-c", "echo out; echo err >&2; exit 3"}

	start := time.Now()
	cold := e.banger(cmd...)
	coldTook := time.Since(start)
	if cold.code != 3 || cold.out != "out\n" || strings.Contains(cold.err, "warm from") {
		t.Fatalf("cold run: exit %d, stdout %q, stderr:\n%s", cold.code, cold.out, cold.err)
	}
	key := waitTemplate(t, dir, 3*time.Minute)
	start = time.Now()
	warm := e.banger(cmd...)
	warmTook := time.Since(start)
	if warm.code != cold.code || warm.out != cold.out || !strings.Contains(warm.err, "warm from start-up snapshot "+key[:12]) {
		t.Fatalf("warm run: exit %d, stdout %q, stderr:\n%s", warm.code, warm.out, warm.err)
	}
	if strings.Contains(warm.err, "warning:") {
		t.Errorf("the warm run fell back:\n%s", warm.err)
	}
	t.Logf("vm run --rm: cold %v, warm %v", coldTook.Round(time.Millisecond), warmTook.Round(time.Millisecond))

	// With a repository and env, a user and a working directory, or a
	// terminal, a warm run gives what a --cold one gives; --rm leaves
	// nothing.
	repo := wsRepo(t)
	probes := [][]string{
		{"-e", "FOO=bar", repo, "--", "sh", "-c",
			`echo "$FOO"; pwd; ls -A | sort | tr '\n' ' '; echo; git log --format=%s | tr '\n' ' '; git status --porcelain | wc -l`},
		{"--user", "nobody", "-w", "/tmp", "--", "sh", "-c", "id -un; pwd"},
		{"-t", "--", "sh", "-c", "test -t 0 && echo on-a-terminal; stty size; exit 5"},
	}
	for _, probe := range probes {
		want := 0
		if probe[0] == "-t" {
			want = 5 // the exit code comes through the terminal too
		}
		run := func(extra ...string) result {
			r := e.banger(append(append([]string{"vm", "run", "--rm"}, extra...), probe...)...)
			if r.code != want {
				t.Fatalf("vm run %v %v: exit %d\n%s", extra, probe, r.code, r.err)
			}
			return r
		}
		c, w := run("--cold"), run()
		if w.out != c.out || !strings.Contains(w.err, "warm from") || strings.Contains(w.err, "warning:") || strings.Contains(c.err, "warm from") {
			t.Errorf("vm run %v: cold %q, warm %q\nwarm stderr:\n%s", probe, c.out, w.out, w.err)
		}
		t.Logf("vm run %v → %q", probe[:2], c.out)
	}
	e.assertClean()

	type shown struct {
		IP          string `json:"ip"`
		MAC         string `json:"mac"`
		StartedFrom string `json:"started_from"`
	}
	id := map[string]map[string]string{}
	for _, name := range []string{"w1", "w2"} {
		// the template was taken with sshd running: the clone's got its
		// new host key by a reload, not by a start after the restore
		if r := e.must("vm", "create", "--name", name); !strings.Contains(r.err, "sshd reloaded") {
			t.Errorf("%s: sshd was not running in the warm clone:\n%s", name, r.err)
		}
		var v shown
		if err := json.Unmarshal([]byte(e.must("vm", "show", name, "--json").out), &v); err != nil {
			t.Fatal(err)
		}
		if v.StartedFrom != "snapshot "+key[:12] {
			t.Errorf("%s started from %q", name, v.StartedFrom)
		}
		got := map[string]string{"ip": v.IP, "mac": v.MAC}
		for k, c := range map[string]string{
			"hostname":   "hostname",
			"eth mac":    "cat /sys/class/net/eth0/address",
			"eth addr":   "ip -4 -o addr show dev eth0 | awk '{print $4}'",
			"machine-id": "cat /etc/machine-id",
			"urandom":    "head -c 16 /dev/urandom | od -An -tx1",
		} {
			got[k] = strings.TrimSpace(e.must("vm", "exec", name, "--", "sh", "-c", c).out)
		}
		// vm ssh checks the VM's own pinned host key.
		got["host key"] = strings.TrimSpace(e.must("vm", "ssh", name, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").out)
		dig, err := e.inNS("dig", "+short", "@10.77.0.1", "-p", "42069", name+".vm", "+time=3", "+tries=2")
		got["dns"] = strings.TrimSpace(dig)
		if err != nil || got["dns"] != v.IP {
			t.Errorf("dig %s.vm = %q (%v), want %s", name, dig, err, v.IP)
		}
		if got["hostname"] != name || got["eth mac"] != v.MAC || !strings.HasPrefix(got["eth addr"], v.IP+"/") {
			t.Errorf("%s: hostname %q, eth0 %s %s; want %s %s", name, got["hostname"], got["eth mac"], got["eth addr"], v.MAC, v.IP)
		}
		id[name] = got
		t.Logf("%s: %q", name, got)
	}
	for k := range id["w1"] {
		if id["w1"][k] == id["w2"][k] || id["w1"][k] == "" {
			t.Errorf("%s: w1 %q, w2 %q: want two different values", k, id["w1"][k], id["w2"][k])
		}
	}
	// A warm clone's disks are copies of the template's, whose filesystem
	// UUIDs its config drive names: it boots cold later as itself, with
	// what it wrote.
	e.must("vm", "exec", "w1", "--", "sh", "-c", "echo kept > /root/mine")
	e.must("vm", "stop", "w1")
	e.must("vm", "start", "w1")
	got := strings.TrimSpace(e.must("vm", "exec", "w1", "--", "sh", "-c", "hostname; cat /etc/machine-id /root/mine").out)
	if want := "w1\n" + id["w1"]["machine-id"] + "\nkept"; got != want {
		t.Errorf("w1 after a cold restart: %q, want %q", got, want)
	}
	e.must("vm", "delete", "w1")
	e.must("vm", "delete", "w2")
	e.assertClean()
}
