package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Marker is the argv element that names the VMM process of VM id. Every
// driver puts it on the command line (qemu `-name`, firecracker `--id`),
// so a VMM whose handles were never written — the daemon died between
// starting it and recording it — can still be found and killed.
func Marker(id string) string { return "banger-" + id }

// FindMarked returns the PIDs of this user's live processes that have
// marker as one whole element of their argv.
func FindMarked(marker string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(marker)
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !ownLive(pid) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range bytes.Split(b, []byte{0}) {
			if bytes.Equal(arg, want) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// HasMarker reports whether pid is alive and carries marker in its argv.
func HasMarker(pid int, marker string) bool {
	if pid <= 0 || !ownLive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, arg := range bytes.Split(b, []byte{0}) {
		if string(arg) == marker {
			return true
		}
	}
	return false
}

// KillPIDs sends SIGKILL to each pid and waits up to wait for all of them
// to be gone (exited or a zombie).
func KillPIDs(pids []int, wait time.Duration) error {
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(wait)
	for _, pid := range pids {
		for ownLive(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pid %d did not exit after SIGKILL", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// ownLive reports whether pid exists, belongs to this user (root sees
// everyone's) and is Alive.
func ownLive(pid int) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st); err != nil {
		return false
	}
	if uid := os.Getuid(); uid != 0 && int(st.Uid) != uid {
		return false
	}
	return Alive(pid)
}

// Alive reports whether any thread of process pid may still hold its
// files (and with them the disks' flocks). A killed multi-threaded VMM's
// main thread turns zombie while its other threads are still exiting,
// and the files go only with the last of them: so a zombie counts as
// gone only once it is the sole thread left ("Threads: 1").
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	zombie, threads := false, 0
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			zombie = strings.HasPrefix(strings.TrimSpace(v), "Z")
		} else if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return !zombie || threads > 1
}

// DiskBusyError is returned by LockDisks when another process holds a
// VM's writable disk.
type DiskBusyError struct {
	Path string
	PIDs []int // the processes that have the file open, when visible
}

func (e *DiskBusyError) Error() string {
	if len(e.PIDs) == 0 {
		return fmt.Sprintf("disk %s is locked by another process", e.Path)
	}
	var who []string
	for _, pid := range e.PIDs {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		who = append(who, fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm))))
	}
	return fmt.Sprintf("disk %s is in use by %s", e.Path, strings.Join(who, ", "))
}

// ErrDiskBusy matches a *DiskBusyError with errors.Is.
var ErrDiskBusy = errors.New("disk in use")

func (e *DiskBusyError) Is(target error) bool { return target == ErrDiskBusy }

// HoldersOf lists this user's processes that have path open.
func HoldersOf(path string) []int {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !ownLive(pid) {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if t, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && t == abs {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
