package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// Snapshots over QMP. Pause is `stop`, Resume is `cont`. SaveState
// migrates the paused machine into a file: QEMU 7.2 has no `file:`
// migration URI (8.2+), so the stream goes through `exec:cat > FILE`,
// which QEMU runs with /bin/sh. A restore starts QEMU with the same
// command line plus `-incoming defer` and feeds the file back with
// `migrate-incoming exec:cat FILE`; the machine then ends `paused` (the
// run state travels in the stream, and the source was stopped).

var _ vmm.Snapshotter = (*Machine)(nil)

// StateFile is the migration stream SaveState writes into its directory.
const StateFile = "state"

// saveBandwidth lifts QEMU's 128 MiB/s default migration bandwidth cap,
// which would make a save of a 1 GiB guest take seconds.
const saveBandwidth = 100 << 30

// pollEvery is how often a save or restore asks QEMU how far it got.
const pollEvery = 10 * time.Millisecond

// Pause stops the vCPUs. Pausing a paused machine is not an error.
func (m *Machine) Pause(ctx context.Context) error {
	_, err := qmpRun(ctx, m.h.ControlSock, "stop", nil)
	return err
}

// Resume continues the vCPUs (also after SaveState, from QEMU's
// `postmigrate`, and after a restore). Resuming a running machine is not
// an error.
func (m *Machine) Resume(ctx context.Context) error {
	_, err := qmpRun(ctx, m.h.ControlSock, "cont", nil)
	return err
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SaveState migrates the paused machine into dir/StateFile. On failure
// the machine stays paused and usable; dir is the caller's to remove.
func (m *Machine) SaveState(ctx context.Context, dir string) (vmm.SavedState, error) {
	if m.mem.File == "" && m.SharesMemory() {
		return m.saveWithOwnMemory(ctx, dir) // memfd.go
	}
	st, err := m.save(ctx, dir, m.mem.Shared)
	if err == nil && m.mem.Shared {
		// The memory stayed in the file: the machine must not run again
		// (its writes would change the snapshot).
		if err := writeMemoryNote(dir, m.mem, m.memBytes()); err != nil {
			return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
		}
	}
	return st, err
}

// save migrates the paused machine into dir/StateFile, leaving its shared
// RAM out of the stream when ignoreShared is set.
func (m *Machine) save(ctx context.Context, dir string, ignoreShared bool) (vmm.SavedState, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return vmm.SavedState{}, err
	}
	q, err := qmpDial(ctx, m.h.ControlSock)
	if err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
	}
	defer q.Close()
	status, err := queryStatus(q)
	if err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
	}
	if status == "running" {
		return vmm.SavedState{}, errors.New("save state: the machine is running; pause it first")
	}
	version, err := queryVersion(q)
	if err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
	}
	if _, err := q.run("migrate-set-parameters", map[string]any{"max-bandwidth": saveBandwidth}); err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
	}
	if err := setIgnoreShared(q, ignoreShared); err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
	}
	path := filepath.Join(dir, StateFile)
	if _, err := q.run("migrate", map[string]any{"uri": "exec:cat > " + shellQuote(path)}); err != nil {
		return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
	}
	for {
		raw, err := q.run("query-migrate", nil)
		if cerr := ctxErr(ctx); err != nil && cerr != nil {
			// The caller's deadline cut the poll itself short.
			cancelMigration(q, m.h.ControlSock)
			return vmm.SavedState{}, fmt.Errorf("save state: %w", cerr)
		}
		if err != nil {
			return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
		}
		var mi struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := json.Unmarshal(raw, &mi); err != nil {
			return vmm.SavedState{}, fmt.Errorf("save state: query-migrate: %w", err)
		}
		switch mi.Status {
		case "completed":
			st := vmm.SavedState{Driver: "qemu", VMMVersion: version}
			var fi syscall.Stat_t
			if err := syscall.Stat(path, &fi); err != nil {
				return vmm.SavedState{}, fmt.Errorf("save state: %w", err)
			}
			st.Bytes = fi.Blocks * 512
			return st, nil
		case "failed", "cancelled":
			msg := mi.ErrorDesc
			if msg == "" {
				msg = mi.Status
			}
			if tail := m.logTail(); tail != "" {
				msg += ": " + tail
			}
			return vmm.SavedState{}, fmt.Errorf("save state to %s failed: %s", path, msg)
		}
		select {
		case <-ctx.Done():
			cancelMigration(q, m.h.ControlSock)
			return vmm.SavedState{}, fmt.Errorf("save state: %w", ctx.Err())
		case <-m.done:
			return vmm.SavedState{}, errors.New("save state: qemu exited: " + m.logTail())
		case <-time.After(pollEvery):
		}
	}
}

// cancelMigration stops a save whose caller gave up, and waits a little
// for QEMU to finish cancelling so that the next save can start. It runs
// on a fresh connection with a deadline of its own: the caller's has
// passed, and may have cut a command short on the old connection.
func cancelMigration(old *qmpConn, sock string) {
	old.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := qmpDial(ctx, sock)
	if err != nil {
		return
	}
	defer q.Close()
	if _, err := q.run("migrate_cancel", nil); err != nil {
		return
	}
	for ctx.Err() == nil {
		raw, err := q.run("query-migrate", nil)
		if err != nil {
			return
		}
		var mi struct{ Status string }
		json.Unmarshal(raw, &mi)
		if mi.Status != "active" && mi.Status != "cancelling" && mi.Status != "setup" {
			return
		}
		time.Sleep(pollEvery)
	}
}

// restoreLimit bounds loading a saved state: a start-up snapshot loads
// in ~0.2 s and a 1 GiB save in under a second here.
var restoreLimit = time.Minute

// setIgnoreShared sets QEMU's x-ignore-shared migration capability: RAM
// blocks mapped shared are left out of the stream. Both ends of a
// migration must agree, so it is set (or cleared) explicitly.
func setIgnoreShared(q *qmpConn, on bool) error {
	_, err := q.run("migrate-set-capabilities", map[string]any{
		"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": on}}})
	return err
}

// memBytes is the size of the machine's memory file.
func (m *Machine) memBytes() int64 {
	fi, err := os.Stat(m.mem.File)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func queryStatus(q *qmpConn) (string, error) {
	raw, err := q.run("query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("query-status: %w", err)
	}
	return st.Status, nil
}

func queryVersion(q *qmpConn) (string, error) {
	raw, err := q.run("query-version", nil)
	if err != nil {
		return "", err
	}
	var v struct {
		QEMU struct{ Major, Minor, Micro int } `json:"qemu"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("query-version: %w", err)
	}
	return fmt.Sprintf("%d.%d.%d", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro), nil
}

// logTail is the end of QEMU's own log (its stderr), where it explains
// why a migration failed.
func (m *Machine) logTail() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(m.h.ControlSock), logFile))
	return strings.TrimSpace(lastLines(string(b), 5))
}

// checkRestore refuses a Restore directory without a state file before
// any process is started.
func checkRestore(dir string) (string, error) {
	path, err := filepath.Abs(filepath.Join(dir, StateFile))
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("restore: no saved qemu state: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("restore: %s is not a file", path)
	}
	return path, nil
}

// incoming feeds the saved state at path into a QEMU started with
// `-incoming defer` and waits until it is loaded; the machine is then
// paused. If QEMU refuses the state it exits, and the error quotes it.
func (m *Machine) incoming(ctx context.Context, path string, ignoreShared bool) error {
	q, err := qmpDialRetry(ctx, m.h.ControlSock, m.done)
	if err != nil {
		return m.restoreFailed(err)
	}
	defer q.Close()
	if err := setIgnoreShared(q, ignoreShared); err != nil {
		return m.restoreFailed(err)
	}
	// A state that never arrives (a reader stuck on the state file)
	// leaves QEMU in "inmigrate" for ever: bound the wait.
	limit := time.After(restoreLimit)
	if _, err := q.run("migrate-incoming", map[string]any{"uri": "exec:cat " + shellQuote(path)}); err != nil {
		return m.restoreFailed(err)
	}
	for {
		status, err := queryStatus(q)
		if err != nil {
			return m.restoreFailed(err)
		}
		switch status {
		case "inmigrate":
		case "paused":
			return nil
		case "running": // not from a paused source; the contract is paused
			_, err := q.run("stop", nil)
			return err
		default:
			return m.restoreFailed(fmt.Errorf("qemu status %q after loading the state", status))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-limit:
			return m.restoreFailed(fmt.Errorf("the saved state did not load within %v", restoreLimit))
		case <-m.done:
			return m.restoreFailed(errors.New("qemu exited"))
		case <-time.After(pollEvery):
		}
	}
}

// restoreFailed waits briefly for QEMU to exit (it does when it rejects
// the state) and returns err with QEMU's own explanation.
func (m *Machine) restoreFailed(err error) error {
	exited := false
	select {
	case <-m.done:
		exited = true
	case <-time.After(2 * time.Second):
	}
	tail := m.logTail()
	switch {
	case exited && tail != "":
		return fmt.Errorf("qemu refused the saved state: %s", tail)
	case tail != "":
		return fmt.Errorf("restore: %v; qemu log: %s", err, tail)
	}
	return fmt.Errorf("restore: %w", err)
}

// qmpDialRetry connects to a QMP socket that QEMU has bound but may not
// yet listen on.
func qmpDialRetry(ctx context.Context, sock string, done <-chan struct{}) (*qmpConn, error) {
	for {
		q, err := qmpDial(ctx, sock)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			return q, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-done:
			return nil, errors.New("qemu exited")
		case <-time.After(pollEvery):
		}
	}
}

// ctxErr is ctx.Err(), or DeadlineExceeded once ctx's deadline has
// passed: the socket's deadline (the same instant) can cut a QMP command
// short before the context's own timer has fired.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
