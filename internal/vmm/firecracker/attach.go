package firecracker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// attachPoll is how often a re-adopted process is checked for exit.
const attachPoll = 100 * time.Millisecond

// Attach implements vmm.Driver. It re-adopts a Firecracker started by an
// earlier daemon only if the PID is still that process: same start time
// and a command line naming firecracker, so a reused PID is never adopted
// (or, later, killed).
func (d *Driver) Attach(h vmm.Handles) (vmm.Machine, error) {
	if h.Driver != DriverName {
		return nil, fmt.Errorf("firecracker attach: handles belong to driver %q", h.Driver)
	}
	if h.PID <= 0 {
		return nil, errors.New("firecracker attach: no pid")
	}
	// Pin the process first (a pidfd on Linux), then check it: if the PID
	// was reused in between, the check fails.
	proc, err := os.FindProcess(h.PID)
	if err != nil {
		return nil, fmt.Errorf("firecracker attach: pid %d: %w", h.PID, err)
	}
	if err := checkOurs(h); err != nil {
		proc.Release()
		return nil, fmt.Errorf("firecracker attach: %w", err)
	}
	m := &machine{
		h:        h,
		api:      d.client(h.ControlSock),
		proc:     proc,
		log:      d.log.With("pid", h.PID),
		killWait: d.opts.KillWait,
		cleanup:  removeFiles(d.log, d.leftoversFor(h)...),
		done:     make(chan struct{}),
	}
	if d.opts.Jailer != nil {
		m.jailRoot = filepath.Dir(filepath.Dir(h.ControlSock)) // <root>/run/fc.sock
	}
	go m.watchForeign(attachPoll)
	return m, nil
}

func checkOurs(h vmm.Handles) error {
	state, ticks, err := procStat(h.PID)
	if err != nil {
		return fmt.Errorf("pid %d is gone: %w", h.PID, err)
	}
	if ticks != h.StartTicks {
		return fmt.Errorf("pid %d was reused (start time %d, recorded %d)", h.PID, ticks, h.StartTicks)
	}
	if state == 'Z' || state == 'X' {
		return fmt.Errorf("pid %d has exited", h.PID)
	}
	cmdline, err := procCmdline(h.PID)
	if err != nil {
		return fmt.Errorf("pid %d: %w", h.PID, err)
	}
	if !strings.Contains(cmdline, "firecracker") {
		return fmt.Errorf("pid %d is not firecracker: %q", h.PID, cmdline)
	}
	return nil
}

// leftoversFor is what to remove once a re-adopted process exits: its
// sockets, or its whole jail when the sockets live in one.
func (d *Driver) leftoversFor(h vmm.Handles) []string {
	if j := d.opts.Jailer; j != nil {
		rel, err := filepath.Rel(j.base(), h.ControlSock)
		// <base>/<exec>/<id>/root/run/fc.sock
		if parts := strings.Split(rel, string(filepath.Separator)); err == nil && len(parts) == 5 && parts[2] == "root" {
			return []string{filepath.Join(j.base(), parts[0], parts[1])}
		}
	}
	return []string{h.ControlSock, h.AgentSock}
}
