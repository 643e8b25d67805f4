package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Marker is the value that names the VMM process of VM id. Every driver
// passes it as the value of one of MarkerFlags (qemu `-name`, firecracker
// and its jailer `--id`), so a VMM whose handles were never written — the
// daemon died between starting it and recording it — can still be found
// and killed.
func Marker(id string) string { return "banger-" + id }

// MarkerFlags are the options whose value is the marker. A process counts
// as marked only when the marker follows one of them: a bare argument
// equal to the marker is someone mentioning the VM (`pgrep -f banger-ID`,
// `grep banger-ID daemon.log`), not a VMM, and must never be killed.
var MarkerFlags = []string{"-name", "--id"}

// FindMarked returns the PIDs of this user's live processes whose argv
// carries marker as the value of one of MarkerFlags.
func FindMarked(marker string) []int {
	var pids []int
	for _, pid := range ownPIDs() {
		if HasMarker(pid, marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ownPIDs lists this user's live processes (everyone's for root), this
// one excepted.
func ownPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() && ownLive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// HasMarker reports whether pid is alive, is this user's and carries
// marker as the value of one of MarkerFlags.
func HasMarker(pid int, marker string) bool {
	if pid <= 0 || !ownLive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := bytes.Split(b, []byte{0})
	for i := 1; i < len(args); i++ {
		if string(args[i]) == marker && slices.Contains(MarkerFlags, string(args[i-1])) {
			return true
		}
	}
	return false
}

// KillMarked sends SIGKILL to each pid that still carries marker and waits
// up to wait for them to be gone (exited or a zombie). Each process is
// pinned by a pidfd before its marker is checked again and the signal is
// sent through that pidfd, so a pid reused since it was found (the stray
// exited, an unrelated process got its number) is never signalled.
func KillMarked(pids []int, marker string, wait time.Duration) error {
	type target struct{ pid, fd int }
	var killed []target
	defer func() {
		for _, k := range killed {
			unix.Close(k.fd)
		}
	}()
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		if !HasMarker(pid, marker) || unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) != nil {
			unix.Close(fd)
			continue
		}
		killed = append(killed, target{pid, fd})
	}
	// A pidfd turns readable once its process has exited.
	deadline := time.Now().Add(wait)
	for _, k := range killed {
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("pid %d did not exit after SIGKILL", k.pid)
			}
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(k.fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
			if n > 0 {
				break
			}
			if err != nil && err != unix.EINTR {
				return fmt.Errorf("wait for pid %d: %w", k.pid, err)
			}
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
	var pids []int
	for _, pid := range ownPIDs() {
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if t, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && t == abs {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
