package firecracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/vmm"
)

// machine is one Firecracker process, started here or re-adopted.
type machine struct {
	h        vmm.Handles
	api      *Client
	proc     *os.Process
	log      *slog.Logger
	killWait time.Duration
	cleanup  func() // removes what the process leaves behind (sockets, chroot)
	jailRoot string // the chroot's host path when jailed, else ""
	// drives are the disk paths an unjailed microVM opened (drives.go);
	// nil when jailed or re-attached.
	drives []savedDrive

	done    chan struct{}
	exitMu  sync.Mutex
	exitErr error
}

var _ vmm.Machine = (*machine)(nil)

// finish is called exactly once, by the single goroutine that watches the
// process, when it has exited.
func (m *machine) finish(err error) {
	m.exitMu.Lock()
	m.exitErr = err
	m.exitMu.Unlock()
	m.api.Close()
	m.cleanup()
	m.log.Info("firecracker exited", "pid", m.h.PID, "err", err)
	close(m.done)
}

// exitError is the process's exit status once Done is closed (nil for a
// clean exit or when unknown, as for a re-adopted process).
func (m *machine) exitError() error {
	m.exitMu.Lock()
	defer m.exitMu.Unlock()
	return m.exitErr
}

// watchChild is the reaper for a process this driver spawned: the only
// caller of cmd.Wait.
func (m *machine) watchChild(wait func() error) { m.finish(wait()) }

// watchForeign polls a re-adopted process, which is not our child and so
// cannot be waited for.
func (m *machine) watchForeign(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if !procAlive(m.h.PID, m.h.StartTicks) {
			m.finish(nil)
			return
		}
	}
}

// Handles implements vmm.Machine.
func (m *machine) Handles() vmm.Handles { return m.h }

// Done implements vmm.Machine.
func (m *machine) Done() <-chan struct{} { return m.done }

func (m *machine) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// DialAgent implements vmm.Machine over Firecracker's hybrid vsock.
func (m *machine) DialAgent(ctx context.Context) (net.Conn, error) {
	return dialVsock(ctx, m.h.AgentSock, proto.VsockPort, m.done)
}

// Shutdown implements vmm.Machine: Ctrl-Alt-Del, which a guest booted with
// reboot=k turns into a reset that ends Firecracker. It waits for the
// process until ctx ends and never kills it; that is Kill's job.
func (m *machine) Shutdown(ctx context.Context) error {
	if m.exited() {
		return nil
	}
	if err := m.api.Action(ctx, ActionSendCtrlAltDel); err != nil {
		if m.exited() {
			return nil // it went while we asked
		}
		return fmt.Errorf("firecracker shutdown: %w", err)
	}
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("firecracker shutdown: guest did not reset after SendCtrlAltDel: %w", ctx.Err())
	}
}

// Kill implements vmm.Machine with SIGKILL (SIGTERM would be no gentler:
// Firecracker does not handle it). It returns once the process is gone.
func (m *machine) Kill() error {
	if m.exited() {
		return nil
	}
	err := m.proc.Signal(syscall.SIGKILL)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill firecracker pid %d: %w", m.h.PID, err)
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(m.killWait):
		return fmt.Errorf("kill firecracker pid %d: still running after %s", m.h.PID, m.killWait)
	}
}

// removeFiles returns a cleanup that deletes paths, ignoring ones already
// gone: Firecracker never removes its sockets, and a stale API socket
// would stop the next start.
func removeFiles(log *slog.Logger, paths ...string) func() {
	return func() {
		for _, p := range paths {
			if p == "" {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				log.Warn("firecracker: remove leftover", "path", p, "err", err)
			}
		}
	}
}
