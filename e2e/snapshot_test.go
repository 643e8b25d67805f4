package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSnapshot is issue 13 with a real guest: a process counting in memory
// goes on after pause/resume; after stop --save and start it is the same
// PID and keeps counting; after snapshot create, a new file and snapshot
// restore --force, the count is back near the snapshot's and the file is
// gone. After every resume the guest's clock is the host's.
func TestSnapshot(t *testing.T) {
	e := newEnv(t)
	const vm = "snap"
	e.must("vm", "create", "--name", vm, "--disk-size", "2G")
	r := e.must("vm", "exec", vm, "--", "sh", "-c",
		`setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /root/count.new; mv /root/count.new /root/count; sleep 0.2; done' </dev/null >/dev/null 2>&1 & pid=$!
		while [ ! -s /root/count ]; do sleep 0.1; done; echo $pid`) // under TCG the first write can take a while
	pid := strings.TrimSpace(r.out)
	if _, err := strconv.Atoi(pid); err != nil {
		t.Fatalf("counter pid %q", r.out)
	}
	count := func() int {
		t.Helper()
		out := strings.TrimSpace(e.must("vm", "exec", vm, "--", "cat", "/root/count").out)
		n, err := strconv.Atoi(out)
		if err != nil {
			t.Fatalf("count %q", out)
		}
		return n
	}
	alive := func(when string) {
		t.Helper()
		r := e.banger("vm", "exec", vm, "--", "sh", "-c", "kill -0 "+pid+" && tr '\\0' ' ' </proc/"+pid+"/cmdline")
		if r.code != 0 || !strings.Contains(r.out, "while") {
			t.Fatalf("%s: the counter (pid %s) is gone: exit %d %q %s", when, pid, r.code, r.out, r.err)
		}
	}
	counting := func(when string) int {
		t.Helper()
		a := count()
		time.Sleep(1500 * time.Millisecond)
		b := count()
		if b <= a {
			t.Fatalf("%s: the counter stands still (%d then %d)", when, a, b)
		}
		return b
	}
	clockOK := func(when string) {
		t.Helper()
		r := e.must("vm", "exec", vm, "--", "date", "+%s")
		g, _ := strconv.ParseInt(strings.TrimSpace(r.out), 10, 64)
		if d := time.Now().Unix() - g; d > 5 || d < -5 {
			t.Errorf("%s: the guest's clock is %ds off the host's", when, d)
		}
	}
	state := func() string {
		t.Helper()
		for _, v := range e.vmList() {
			if v["name"] == vm {
				return v["state"].(string)
			}
		}
		t.Fatal("vm gone")
		return ""
	}
	counting("at start")

	t.Run("pause and resume", func(t *testing.T) {
		e.t = t
		e.must("vm", "pause", vm)
		if s := state(); s != "paused" {
			t.Fatalf("state %s after pause", s)
		}
		if r := e.banger("vm", "exec", vm, "--", "true"); r.code == 0 || !strings.Contains(r.err, "vm resume") {
			t.Errorf("exec in a paused VM: exit %d %s", r.code, r.err)
		}
		time.Sleep(3 * time.Second)
		e.must("vm", "resume", vm)
		alive("after resume")
		counting("after resume")
		clockOK("after a 3 s pause")
	})

	t.Run("a paused VM stays paused across kill -9 of the daemon", func(t *testing.T) {
		e.t = t
		e.must("vm", "pause", vm)
		pid := e.daemonPID()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
		if s := state(); s != "paused" { // the next call starts a daemon, which re-attaches
			t.Fatalf("state %s after the daemon's restart", s)
		}
		e.must("vm", "resume", vm)
		alive("after resume by a new daemon")
		counting("after resume by a new daemon")
	})

	t.Run("stop --save and start continue the same process", func(t *testing.T) {
		e.t = t
		before := count()
		logStage(t, e.must("vm", "stop", "--save", vm), "saved in")
		if s := state(); s != "saved" {
			t.Fatalf("state %s after stop --save", s)
		}
		time.Sleep(2 * time.Second)
		e.must("vm", "start", vm)
		if s := state(); s != "running" {
			t.Fatalf("state %s after start", s)
		}
		alive("after start of the saved VM")
		if n := counting("after start of the saved VM"); n < before {
			t.Errorf("count %d after start is below %d before the save: it restarted", n, before)
		}
		clockOK("after start of the saved VM")
	})

	t.Run("snapshot create, restore --force", func(t *testing.T) {
		e.t = t
		before := count()
		logStage(t, e.must("vm", "snapshot", "create", vm, "s1"), "was paused for")
		after := count()
		e.must("vm", "exec", vm, "--", "sh", "-c", "echo later > /root/after-snapshot")
		time.Sleep(4 * time.Second)
		late := counting("after the snapshot")
		if r := e.banger("vm", "snapshot", "restore", vm, "s1"); r.code == 0 || !strings.Contains(r.err, "--force") {
			t.Fatalf("restore of a running VM without --force: exit %d %s", r.code, r.err)
		}
		e.must("vm", "snapshot", "restore", "--force", vm, "s1")
		got := count()
		t.Logf("count: %d before the snapshot, %d after it, %d before the restore, %d after the restore", before, after, late, got)
		if got < before || got >= late {
			t.Errorf("count after restore %d: want near the snapshot's (%d..%d), below %d", got, before, after, late)
		}
		if r := e.banger("vm", "exec", vm, "--", "test", "-e", "/root/after-snapshot"); r.code == 0 {
			t.Error("a file written after the snapshot is still there after the restore")
		}
		alive("after restore")
		counting("after restore")
		clockOK("after restore")
		var list []map[string]any
		if err := json.Unmarshal([]byte(e.must("vm", "snapshot", "ls", vm, "--json").out), &list); err != nil || len(list) != 1 || list[0]["name"] != "s1" {
			t.Fatalf("snapshot ls: %v %v", list, err)
		}
		t.Logf("snapshot: %v bytes, %v %v", list[0]["bytes"], list[0]["vmm"], list[0]["vmm_version"])
	})

	e.t = t
	e.must("vm", "delete", vm)
	e.assertClean()
}

// logStage logs the progress lines of r that contain what (timings).
func logStage(t *testing.T, r result, what string) {
	t.Helper()
	for _, line := range strings.Split(r.err, "\n") {
		if strings.Contains(line, what) {
			t.Logf("  %s", strings.TrimSpace(line))
		}
	}
}
