package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFork is issue 14 with real guests: a parent with a workspace and a
// process counting in memory is forked into three children. The counter
// goes on (same PID) in each and in the parent; each child has its own
// hostname, MAC, address, DNS name, machine-id, random numbers and
// pinned SSH host key (vm ssh reaches it at its own address); a file a child writes is its own;
// each child's workspace export holds the parent's edits and its own
// only, and applies on a clean host checkout. Then a fork of a paused VM
// keeps it paused, and a daemon killed (-9) in the middle of a fork
// leaves whole children or none.
func TestFork(t *testing.T) {
	e := newEnv(t)
	run(t, "ip", "-n", e.ns, "link", "set", "lo", "up") // dig reaches banger's DNS on the bridge
	repo := wsRepo(t)
	e.must("vm", "create", "--name", "dev")
	e.must("vm", "workspace", "prepare", "dev", repo)
	e.must("vm", "exec", "dev", "--", "sh", "-c", "cd /root/repo && echo 'before the fork' >> README.md")
	pid := strings.TrimSpace(e.must("vm", "exec", "dev", "--", "sh", "-c",
		`setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.2; done' </dev/null >/dev/null 2>&1 & pid=$!
		while [ ! -s /tmp/count ]; do sleep 0.1; done; echo $pid`).out)
	count := func(vm string) int {
		t.Helper()
		r := e.must("vm", "exec", vm, "--", "sh", "-c", "kill -0 "+pid+" && cat /tmp/count")
		n, err := strconv.Atoi(strings.TrimSpace(r.out))
		if err != nil {
			t.Fatalf("%s: count %q", vm, r.out)
		}
		return n
	}
	before := count("dev")

	start := time.Now()
	r := e.must("vm", "fork", "dev", "--count", "3", "--name", "try", "--json")
	took := time.Since(start)
	var res struct {
		PausedMS int64 `json:"paused_ms"`
		Children []struct {
			Name, IP, MAC, State string
			StartedFrom          string `json:"started_from"`
		} `json:"children"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || len(res.Children) != 3 {
		t.Fatalf("fork --json: %v\n%s\n%s", err, r.out, r.err)
	}
	t.Logf("vm fork --count 3: %v, parent paused %d ms", took.Round(time.Millisecond), res.PausedMS)
	if s := e.vmState("dev"); s != "running" {
		t.Fatalf("parent is %s after the fork", s)
	}

	seen := map[string]string{}
	unique := func(what, vm, v string) {
		t.Helper()
		if v == "" {
			t.Errorf("%s of %s is empty", what, vm)
		}
		if other, ok := seen[what+"="+v]; ok {
			t.Errorf("%s %q shared by %s and %s", what, v, other, vm)
		}
		seen[what+"="+v] = vm
	}
	all := []string{"dev"}
	for _, c := range res.Children {
		all = append(all, c.Name)
		if c.State != "running" || c.StartedFrom != "fork of dev" {
			t.Errorf("%s: state %s, started from %q", c.Name, c.State, c.StartedFrom)
		}
		ex := func(cmd string) string {
			return strings.TrimSpace(e.must("vm", "exec", c.Name, "--", "sh", "-c", cmd).out)
		}
		if h := ex("hostname"); h != c.Name {
			t.Errorf("%s: hostname %q", c.Name, h)
		}
		if m := ex("cat /sys/class/net/eth0/address"); m != c.MAC {
			t.Errorf("%s: eth0 MAC %s, want %s", c.Name, m, c.MAC)
		}
		if a := ex("ip -4 -o addr show dev eth0 | awk '{print $4}'"); !strings.HasPrefix(a, c.IP+"/") {
			t.Errorf("%s: eth0 addresses %q, want only %s", c.Name, a, c.IP)
		}
		dig, err := e.inNS("dig", "+short", "@10.77.0.1", "-p", "42069", c.Name+".vm", "+time=3", "+tries=2")
		if err != nil || strings.TrimSpace(dig) != c.IP {
			t.Errorf("dig %s.vm = %q (%v), want %s", c.Name, dig, err, c.IP)
		}
	}
	for _, vm := range all {
		ex := func(cmd string) string { return strings.TrimSpace(e.must("vm", "exec", vm, "--", "sh", "-c", cmd).out) }
		unique("machine-id", vm, ex("cat /etc/machine-id"))
		unique("urandom", vm, ex("head -c 16 /dev/urandom | od -An -tx1"))
		unique("ip", vm, ex("ip -4 -o addr show dev eth0 | awk '{print $4}'"))
		// vm ssh checks the host key pinned for this VM
		unique("host key", vm, strings.TrimSpace(e.must("vm", "ssh", vm, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").out))
		a := count(vm)
		if a < before {
			t.Errorf("%s: the counter restarted (%d, was %d before the fork)", vm, a, before)
		}
		time.Sleep(time.Second)
		if b := count(vm); b <= a {
			t.Errorf("%s: the counter stands still (%d then %d)", vm, a, b)
		}
		e.must("vm", "exec", vm, "--", "sh", "-c", "echo "+vm+" > /root/mine && cd /root/repo && echo "+vm+" > only-"+vm+".txt")
	}
	for _, vm := range all {
		if got := strings.TrimSpace(e.must("vm", "exec", vm, "--", "sh", "-c", "cat /root/mine; ls /root/repo | grep only- | tr '\\n' ' '").out); got != vm+"\nonly-"+vm+".txt" {
			t.Errorf("%s sees %q: not only its own files", vm, got)
		}
	}
	for _, c := range res.Children {
		patch := filepath.Join(t.TempDir(), c.Name+".patch")
		e.must("vm", "workspace", "export", c.Name, "-o", patch)
		clone := filepath.Join(t.TempDir(), "clone")
		gitIn(t, repo, "clone", "-q", repo, clone)
		gitIn(t, clone, "apply", patch)
		names := strings.TrimSpace(gitIn(t, clone, "status", "--porcelain"))
		if names != "M README.md\n?? only-"+c.Name+".txt" {
			t.Errorf("%s's patch changes:\n%s", c.Name, names)
		}
		if b, _ := os.ReadFile(filepath.Join(clone, "README.md")); !strings.HasSuffix(string(b), "before the fork\n") {
			t.Errorf("%s's patch lacks the parent's edit: README.md %q", c.Name, b)
		}
	}

	t.Run("fork of a paused VM keeps it paused", func(t *testing.T) {
		e.t = t
		e.must("vm", "pause", "dev")
		e.must("vm", "fork", "dev", "--name", "frozen")
		if s := e.vmState("dev"); s != "paused" {
			t.Errorf("parent is %s", s)
		}
		if got := strings.TrimSpace(e.must("vm", "exec", "frozen", "--", "hostname").out); got != "frozen" {
			t.Errorf("child hostname %q", got)
		}
		e.must("vm", "delete", "frozen")
		e.must("vm", "resume", "dev")
	})

	t.Run("daemon killed mid-fork leaves whole children or none", func(t *testing.T) {
		e.t = t
		for _, c := range res.Children {
			e.must("vm", "delete", c.Name)
		}
		vmsDir := filepath.Join(e.stateDir(), "vms")
		known := map[string]bool{}
		entries, _ := os.ReadDir(vmsDir)
		for _, d := range entries {
			known[d.Name()] = true
		}
		daemon := e.daemonPID()
		done := make(chan result, 1)
		go func() { done <- e.banger("vm", "fork", "dev", "--count", "2", "--name", "k") }()
		// kill once a child's directory exists: its disks are being
		// copied or its VMM is starting
		var kids []string
		for deadline := time.Now().Add(2 * time.Minute); len(kids) == 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no child directory appeared")
			}
			entries, _ := os.ReadDir(vmsDir)
			for _, d := range entries {
				if !known[d.Name()] {
					kids = append(kids, d.Name())
				}
			}
		}
		syscall.Kill(daemon, syscall.SIGKILL)
		waitGone(t, daemon) // a call before its socket closes would be reset
		r := <-done
		t.Logf("fork cut off (children %v): exit %d %s", kids, r.code, r.err)
		names := map[string]string{}
		for _, v := range e.vmList() { // starts a daemon, which reconciles
			names[fmt.Sprint(v["name"])] = fmt.Sprint(v["state"])
		}
		if names["dev"] != "running" {
			t.Errorf("parent is %q after the crash", names["dev"])
		}
		for _, k := range []string{"k-1", "k-2"} {
			state, ok := names[k]
			if !ok {
				continue
			}
			if state != "running" {
				t.Errorf("%s is %s after the crash: a half-made child", k, state)
				continue
			}
			if h := strings.TrimSpace(e.must("vm", "exec", k, "--", "hostname").out); h != k {
				t.Errorf("%s kept after the crash has hostname %q", k, h)
			}
			e.must("vm", "delete", k)
		}
		for _, id := range kids {
			if pids := markedPIDs("banger-" + id); len(pids) != 0 {
				t.Errorf("VMM of an unfinished child %s still runs: %v", id, pids)
			}
			if _, err := os.Stat(filepath.Join(vmsDir, id)); err == nil {
				t.Errorf("directory of child %s left", id)
			}
		}
	})
	e.must("vm", "delete", "dev")
	e.assertClean()
}
