package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLifecycle is issue 4's crash-safety walk with real guests: parallel
// creates, kill -9 of the daemon (VMs survive and are re-attached), kill -9
// of a VMM (noticed, marked stopped, restartable), resize, stats, ports.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	names := []string{"la", "lb", "lc"}

	t.Run("parallel creates", func(t *testing.T) {
		e.t = t
		var wg sync.WaitGroup
		res := make([]result, len(names))
		for i, n := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = e.banger("vm", "create", "--name", n, "--vcpu", "1", "--memory", "512", "--disk-size", "2G")
			}()
		}
		wg.Wait()
		for i, r := range res {
			if r.code != 0 {
				t.Fatalf("create %s: exit %d\n%s", names[i], r.code, r.err)
			}
		}
		ips := map[any]bool{}
		for _, v := range e.vmList() {
			ips[v["ip"]] = true
			if v["state"] != "running" {
				t.Errorf("%v is %v", v["name"], v["state"])
			}
		}
		if len(ips) != 3 {
			t.Errorf("addresses not distinct: %v", ips)
		}
	})

	t.Run("kill -9 bangerd keeps VMs running and reachable", func(t *testing.T) {
		e.t = t
		pid := e.daemonPID()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
		// The next CLI call starts a new daemon, which re-attaches.
		for _, v := range e.vmList() {
			if v["state"] != "running" {
				t.Errorf("after daemon restart %v is %v", v["name"], v["state"])
			}
		}
		if e.daemonPID() == pid {
			t.Fatal("daemon was not restarted")
		}
		for _, n := range names[:2] {
			r := e.must("vm", "ssh", n, "--", "hostname")
			if strings.TrimSpace(r.out) != n {
				t.Errorf("ssh %s: %q", n, r.out)
			}
		}
	})

	t.Run("kill -9 a VMM: marked stopped, starts again", func(t *testing.T) {
		e.t = t
		pid := e.vmPID("lc")
		syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.Now().Add(30 * time.Second)
		for e.vmState("lc") != "stopped" {
			if time.Now().After(deadline) {
				t.Fatalf("lc still %s after its VMM died", e.vmState("lc"))
			}
			time.Sleep(200 * time.Millisecond)
		}
		r := e.must("vm", "show", "lc")
		if !strings.Contains(r.out, "powered off or its VMM exited") {
			t.Errorf("vm show lacks the reason:\n%s", r.out)
		}
		e.must("vm", "start", "lc")
		e.must("vm", "ssh", "lc", "--", "true")
	})

	t.Run("set resizes a stopped VM", func(t *testing.T) {
		e.t = t
		if r := e.banger("vm", "set", "la", "--vcpu", "2"); r.code == 0 || !strings.Contains(r.err, "stop it first") {
			t.Errorf("set on running VM: exit %d %q", r.code, r.err)
		}
		e.must("vm", "ssh", "la", "--", "echo kept > /root/data; sync")
		e.must("vm", "stop", "la")
		if r := e.banger("vm", "set", "la", "--disk-size", "1G"); r.code == 0 || !strings.Contains(r.err, "only grow") {
			t.Errorf("shrink: exit %d %q", r.code, r.err)
		}
		e.must("vm", "set", "la", "--vcpu", "2", "--memory", "768", "--disk-size", "3G")
		e.must("vm", "start", "la")
		// The host only extended the disk files; the guest agent grew both
		// filesystems online at boot (/ is the overlay disk under overlayfs).
		r := e.must("vm", "ssh", "la", "--", "nproc; free -m | awk '/Mem:/{print $2}'; df -BG --output=size /root | tail -1; cat /root/data; df -BG --output=size / | tail -1")
		f := strings.Fields(r.out)
		if len(f) != 5 || f[0] != "2" || f[3] != "kept" {
			t.Fatalf("guest sees %q", r.out)
		}
		if mem, _ := strconv.Atoi(f[1]); mem < 600 || mem > 768 {
			t.Errorf("guest memory %d MiB, want about 768", mem)
		}
		if f[2] != "3G" || f[4] != "3G" {
			t.Errorf("/root is %s and / is %s, want 3G", f[2], f[4])
		}
	})

	t.Run("stats and ports", func(t *testing.T) {
		e.t = t
		var s map[string]any
		r := e.must("vm", "stats", "la", "--json")
		if err := json.Unmarshal([]byte(r.out), &s); err != nil || s["cpus"] != float64(2) || s["mem_total_bytes"].(float64) < 500<<20 {
			t.Errorf("stats: %v %s", err, r.out)
		}
		r = e.must("vm", "ports", "la")
		if !strings.Contains(r.out, "sshd") || !strings.Contains(r.out, " 22 ") {
			t.Errorf("ports lack sshd on 22:\n%s", r.out)
		}
	})

	// A guest that hangs in early boot (here: its vCPUs paused over QMP
	// as soon as QEMU is up) is noticed after boot_stall_timeout, the
	// evidence is kept and the VMM restarted once; the boot then succeeds.
	t.Run("a hung boot is restarted once", func(t *testing.T) {
		e.t = t
		os.WriteFile(filepath.Join(e.home, "config", "banger", "config.toml"),
			[]byte("boot_stall_timeout = \"10s\"\n[snapshots]\nwarm = false\n[vm_defaults]\nvcpu = 2\nmemory = 1024\n"), 0o600)
		e.stopDaemon() // the next call starts a daemon with the new config
		id := fmt.Sprint(e.vmShow("lc")["id"])
		e.must("vm", "stop", "lc")
		done := make(chan result, 1)
		go func() { done <- e.banger("vm", "start", "lc") }()
		sock := filepath.Join(e.runtimeDir(), "vms", id, "qmp.sock")
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := qmpExecute(sock, "stop"); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("could not pause lc's vCPUs: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		r := <-done
		if r.code != 0 || !strings.Contains(r.err, "restarting the VMM once") {
			t.Fatalf("vm start: exit %d\n%s", r.code, r.err)
		}
		b, err := os.ReadFile(filepath.Join(e.stateDir(), "vms", id, "boot-stall.txt"))
		if err != nil || !strings.Contains(string(b), "(qemu) info registers -a") || !strings.Contains(string(b), "IP=") {
			t.Errorf("evidence: %v\n%.2000s", err, b)
		}
		e.must("vm", "ssh", "lc", "--", "true")
	})

	t.Run("delete all leaves nothing", func(t *testing.T) {
		e.t = t
		for _, n := range names {
			e.must("vm", "delete", n)
		}
		e.assertClean()
	})
}

func (e *env) daemonPID() int {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.runtimeDir(), "bangerd.pid"))
	if err != nil {
		e.t.Fatalf("daemon pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (e *env) vmShow(name string) map[string]any {
	e.t.Helper()
	var v map[string]any
	r := e.must("vm", "show", name, "--json")
	if err := json.Unmarshal([]byte(r.out), &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) vmState(name string) string { return fmt.Sprint(e.vmShow(name)["state"]) }

func (e *env) vmPID(name string) int {
	pid, _ := e.vmShow(name)["pid"].(float64)
	if pid == 0 {
		e.t.Fatalf("%s has no VMM pid", name)
	}
	return int(pid)
}

// qmpExecute sends one argument-less QMP command to a VMM's socket.
func qmpExecute(sock, command string) error {
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil {
		return err
	}
	for _, c := range []string{"qmp_capabilities", command} {
		fmt.Fprintf(conn, `{"execute":%q}`+"\n", c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return err
			}
			if bytes.Contains(line, []byte(`"error"`)) {
				return fmt.Errorf("qmp %s: %s", c, line)
			}
			if bytes.Contains(line, []byte(`"return"`)) {
				break
			}
		}
	}
	return nil
}

func waitGone(t *testing.T, pid int) {
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still alive", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
