package e2e

import (
	"bytes"
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

// TestLaunchCrashLeavesNoStrayVMM is issue 11's finding 4 with a real
// QEMU: the daemon is killed after it started a VMM and before it wrote
// handles.json. qemu_bin is a wrapper that, while a flag file exists,
// sleeps before exec'ing QEMU with the same argv — so the crash window
// (QEMU's start-up wait, up to 15 s) is held open deterministically. The
// next daemon finds the stray by the VM's marker in its argv and kills
// it, records why, and the VM then starts and works.
func TestLaunchCrashLeavesNoStrayVMM(t *testing.T) {
	e := newEnv(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(e.home, "hold-launch")
	wrapper := filepath.Join(e.home, "qemu-wrapper")
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nif [ -e %s ]; then sleep 5; fi\nexec %s \"$@\"\n", flag, qemu)), 0o755)
	os.WriteFile(filepath.Join(e.home, "config", "banger", "config.toml"),
		[]byte(fmt.Sprintf("vmm = \"qemu\"\nqemu_bin = %q\n[snapshots]\nwarm = false\n[vm_defaults]\nvcpu = 2\nmemory = 1024\n", wrapper)), 0o600)
	e.stopDaemon()

	e.must("vm", "create", "--name", "cw")
	id := fmt.Sprint(e.vmShow("cw")["id"])
	marker := "banger-" + id
	e.must("vm", "stop", "cw")

	os.WriteFile(flag, nil, 0o600)
	started := make(chan result, 1)
	go func() { started <- e.banger("vm", "start", "cw") }()
	var stray int
	deadline := time.Now().Add(20 * time.Second)
	for stray == 0 {
		if pids := markedPIDs(marker); len(pids) == 1 {
			stray = pids[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("no process with %s in its argv", marker)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rt := filepath.Join(e.runtimeDir(), "vms", id)
	if _, err := os.Stat(filepath.Join(rt, "handles.json")); err == nil {
		t.Fatal("handles.json already written: not the crash window")
	}
	if _, err := os.Stat(filepath.Join(rt, "launch.json")); err != nil {
		t.Errorf("no launch intent recorded before the VMM started: %v", err)
	}
	daemon := e.daemonPID()
	syscall.Kill(daemon, syscall.SIGKILL)
	waitGone(t, daemon)
	os.Remove(flag)
	<-started // fails: its daemon died
	// The wrapper execs QEMU (same PID, same argv): a real VMM nobody
	// manages, holding the disk lock it inherited.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", stray))
		if strings.HasPrefix(string(comm), "qemu-system") {
			break
		}
		if !pidAlive(stray) || time.Now().After(deadline) {
			t.Fatalf("the stray did not become QEMU (alive %v, comm %q)", pidAlive(stray), comm)
		}
	}
	disk, err := os.OpenFile(filepath.Join(e.stateDir(), "vms", id, "overlay.ext4"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	if err := syscall.Flock(int(disk.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Error("the stray QEMU does not hold its disk's lock")
	}

	v := e.vmShow("cw") // a new daemon reconciles
	if pidAlive(stray) {
		t.Fatalf("stray VMM pid %d still running after reconcile", stray)
	}
	if v["state"] != "failed" || !strings.Contains(fmt.Sprint(v["last_error"]), strconv.Itoa(stray)) {
		t.Errorf("after reconcile: %v %v", v["state"], v["last_error"])
	}
	e.must("vm", "start", "cw")
	if pids := markedPIDs(marker); len(pids) != 1 || pids[0] != e.vmPID("cw") {
		t.Errorf("VMMs of cw: %v, managed pid %d", pids, e.vmPID("cw"))
	}
	e.must("vm", "ssh", "cw", "--", "true")
	e.must("vm", "delete", "cw")
	e.assertClean()
}

// markedPIDs lists live processes with marker as a whole argv element.
func markedPIDs(marker string) []int {
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || !pidAlive(pid) {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		for _, a := range bytes.Split(b, []byte{0}) {
			if string(a) == marker {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}
