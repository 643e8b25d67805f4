package firecracker

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat returns a process's state letter and its start time in clock
// ticks since boot (field 22 of /proc/PID/stat). The start time tells a
// process from a later one that reuses its PID.
func procStat(pid int) (state byte, startTicks uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// comm (field 2) may contain spaces and parentheses; it ends at the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return f[0][0], st, nil
}

// procCmdline returns a process's argv joined by spaces.
func procCmdline(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))), nil
}

// procAlive reports whether pid is still the process that started at
// startTicks and has not exited (a zombie has exited).
func procAlive(pid int, startTicks uint64) bool {
	state, st, err := procStat(pid)
	return err == nil && st == startTicks && state != 'Z' && state != 'X'
}
