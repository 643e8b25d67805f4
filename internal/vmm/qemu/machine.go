package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// Machine is one QEMU process, started here or re-attached.
type Machine struct {
	h        vmm.Handles
	done     chan struct{}
	killOnce sync.Once
	mem      vmm.MemorySpec // as started; zero for an attached machine
}

var _ vmm.Machine = (*Machine)(nil)

// Start launches QEMU. The process runs in its own session and is not
// tied to ctx, so it outlives the request and the daemon.
func (d *Driver) Start(ctx context.Context, spec vmm.Spec) (vmm.Machine, error) {
	if d.binErr != nil {
		return nil, d.binErr
	}
	var statePath string
	var note memoryNote
	var noted bool
	if spec.Restore != "" {
		p, err := checkRestore(spec.Restore)
		if err != nil {
			return nil, err
		}
		statePath = p
		if note, noted, err = readMemoryNote(spec.Restore); err != nil {
			return nil, err
		}
	}
	memf, err := openMemory(spec, note, noted)
	if err != nil {
		return nil, err
	}
	if memf != nil {
		defer memf.Close()
	}
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return nil, err
	}
	qmpSock := filepath.Join(spec.Dir, "qmp.sock")
	agentSock := filepath.Join(spec.Dir, "agent.sock")
	for _, p := range []string{qmpSock, agentSock} {
		os.Remove(p)
	}
	logPath := filepath.Join(spec.Dir, logFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	argSpec := spec
	if memf != nil && spec.Memory.File == "" {
		// a state's own memory, copied into a memfd: mapped shared
		argSpec.Memory = vmm.MemorySpec{File: fmt.Sprintf("/proc/self/fd/%d", memoryFD(spec)), Shared: true}
	}
	cmd := exec.Command(d.bin, d.Args(argSpec)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The disks' flocks (vmm.LockDisks) go with the process: QEMU keeps
	// inherited descriptors open, so they are held while it runs.
	cmd.ExtraFiles = append([]*os.File(nil), spec.Inherit...)
	if memf != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, memf) // fd memoryFD(spec)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	m := &Machine{done: make(chan struct{}), mem: spec.Memory, h: vmm.Handles{
		Driver: "qemu", PID: cmd.Process.Pid, ControlSock: qmpSock, AgentSock: agentSock,
		ConsoleLog: spec.ConsoleLog, StartedAt: time.Now(),
	}}
	if spec.Net != nil {
		m.h.TAP = spec.Net.TAP
	}
	go func() {
		cmd.Wait()
		close(m.done)
	}()
	m.h.StartTicks, _ = startTicks(m.h.PID)
	if err := waitSockets(ctx, m.done, qmpSock, agentSock); err != nil {
		m.Kill()
		tail, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%w: %v: %s", ErrExited, err, strings.TrimSpace(lastLines(string(tail), 5)))
	}
	if statePath != "" {
		if err := m.incoming(ctx, statePath, noted); err != nil {
			m.Kill()
			return nil, err
		}
	}
	return m, nil
}

// logFile receives QEMU's stdout and stderr in the VM's runtime dir.
const logFile = "qemu.log"

func waitSockets(ctx context.Context, done <-chan struct{}, paths ...string) error {
	deadline := time.After(15 * time.Second)
	for {
		ok := true
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil {
				ok = false
			}
		}
		if ok {
			return nil
		}
		select {
		case <-done:
			return errors.New("process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errors.New("sockets did not appear within 15s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Attach re-adopts a QEMU started by an earlier daemon.
func (d *Driver) Attach(h vmm.Handles) (vmm.Machine, error) {
	if !alive(h) {
		return nil, fmt.Errorf("qemu pid %d is gone", h.PID)
	}
	m := &Machine{h: h, done: make(chan struct{})}
	go func() {
		for alive(h) {
			time.Sleep(250 * time.Millisecond)
		}
		close(m.done)
	}()
	return m, nil
}

// alive reports whether h.PID is still the same QEMU process (not a
// reused PID and not a zombie).
func alive(h vmm.Handles) bool {
	t, err := startTicks(h.PID)
	if err != nil || (h.StartTicks != 0 && t != h.StartTicks) {
		return false
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.PID))
	if i := strings.LastIndexByte(string(st), ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
		return false
	}
	return true
}

// startTicks reads field 22 of /proc/PID/stat.
func startTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("bad stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func (m *Machine) Handles() vmm.Handles  { return m.h }
func (m *Machine) Done() <-chan struct{} { return m.done }

// DialAgent connects to the virtio-serial port's host socket.
func (m *Machine) DialAgent(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", m.h.AgentSock)
}

// Shutdown presses the ACPI power button and waits for QEMU to exit.
func (m *Machine) Shutdown(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := qmpRun(qctx, m.h.ControlSock, "system_powerdown", nil)
	cancel()
	if err != nil {
		return err
	}
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Diagnose returns QEMU's view of the vCPUs (registers, halted state):
// evidence of where a guest that stopped making progress is stuck.
func (m *Machine) Diagnose(ctx context.Context) (string, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out strings.Builder
	for _, hmp := range []string{"info cpus", "info registers -a"} {
		raw, err := qmpRun(qctx, m.h.ControlSock, "human-monitor-command", map[string]string{"command-line": hmp})
		if err != nil {
			return out.String(), err
		}
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return out.String(), fmt.Errorf("qmp %s: %w", hmp, err)
		}
		fmt.Fprintf(&out, "(qemu) %s\n%s\n", hmp, text)
	}
	return out.String(), nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (m *Machine) Kill() error {
	m.killOnce.Do(func() {
		select {
		case <-m.done:
			return
		default:
		}
		syscall.Kill(m.h.PID, syscall.SIGKILL)
	})
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("qemu pid %d did not exit after SIGKILL", m.h.PID)
	}
	os.Remove(m.h.ControlSock)
	os.Remove(m.h.AgentSock)
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
