package firecracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// launch is everything decided before spawning one VM.
type launch struct {
	spec     vmm.Spec // paths as Firecracker sees them
	files    apiFiles // files Firecracker creates, as it sees them
	argv     []string
	apiSock  string // host paths from here on
	vsock    string
	stderr   string
	console  string
	jail     *jailLayout
	leftover []string // removed after the process exits
	// A restore's state files as Firecracker sees them (snapshot.go).
	restoreState, restoreMem string
}

// Start implements vmm.Driver. ctx bounds only the start-up: the process
// is not tied to it and outlives it.
func (d *Driver) Start(ctx context.Context, spec vmm.Spec) (vmm.Machine, error) {
	if spec.Memory.File != "" {
		// Firecracker's snapshot load with a File memory backend already
		// maps the memory file privately; templates are not wired yet.
		return nil, fmt.Errorf("firecracker start: file-backed memory: %w", vmm.ErrNotSupported)
	}
	if err := validateSpec(spec); err != nil {
		return nil, fmt.Errorf("firecracker start: %w", err)
	}
	l, err := d.plan(spec)
	if err != nil {
		return nil, fmt.Errorf("firecracker start: %w", err)
	}
	if spec.Restore != "" {
		if l.restoreState, l.restoreMem, err = restoreFiles(spec.Restore); err != nil {
			return nil, fmt.Errorf("firecracker start: %w", err)
		}
		if l.jail == nil {
			if err := checkDrives(spec.Restore, spec); err != nil {
				return nil, fmt.Errorf("firecracker start: %w", err)
			}
		}
	}
	if err := d.prepare(l, spec); err != nil {
		removeFiles(d.log, l.leftover...)()
		return nil, fmt.Errorf("firecracker start: %w", err)
	}
	m, err := d.spawn(l, spec)
	if err != nil {
		removeFiles(d.log, l.leftover...)()
		return nil, fmt.Errorf("firecracker start: %w", err)
	}
	if err := d.boot(ctx, m, l); err != nil {
		if kerr := m.Kill(); kerr != nil {
			d.log.Error("firecracker: kill after failed start", "err", kerr)
		}
		return nil, fmt.Errorf("firecracker start: %w", err)
	}
	return m, nil
}

// plan fixes paths and argv, with or without the jailer.
func (d *Driver) plan(spec vmm.Spec) (*launch, error) {
	bin, err := d.binary()
	if err != nil {
		return nil, err
	}
	id := instanceID(spec)
	l := &launch{
		spec:    spec,
		stderr:  filepath.Join(spec.Dir, stderrName),
		console: spec.ConsoleLog,
	}
	if l.console == "" {
		l.console = filepath.Join(spec.Dir, consoleName)
	}
	if d.opts.Jailer == nil {
		l.apiSock = filepath.Join(spec.Dir, apiSockName)
		l.vsock = filepath.Join(spec.Dir, vsockName)
		l.files = apiFiles{Vsock: l.vsock, Log: filepath.Join(spec.Dir, loggerName), Metrics: filepath.Join(spec.Dir, metricsName)}
		l.argv = []string{bin, "--api-sock", l.apiSock, "--id", id}
		l.leftover = []string{l.apiSock, l.vsock}
		return l, nil
	}
	j := d.opts.Jailer
	jbin, err := j.binary()
	if err != nil {
		return nil, err
	}
	layout := newJailLayout(j, bin, id)
	in := func(name string) string { return filepath.Join(jailRunDir, name) }
	l.jail = &layout
	l.spec = jailSpec(spec)
	l.files = apiFiles{Vsock: in(vsockName), Log: in(loggerName), Metrics: in(metricsName)}
	l.apiSock, l.vsock = layout.host(in(apiSockName)), layout.host(in(vsockName))
	l.argv = jailerArgs(jbin, j, bin, id, []string{"--api-sock", in(apiSockName)})
	l.leftover = []string{layout.Dir}
	return l, nil
}

// maxSockPath is sun_path's size less the terminating NUL.
const maxSockPath = 107

// prepare removes what an earlier run left: Firecracker refuses to start
// when its API socket exists, and PUT /vsock fails when the uds exists.
func (d *Driver) prepare(l *launch, spec vmm.Spec) error {
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return err
	}
	for _, p := range []string{l.apiSock, l.vsock} {
		if len(p) > maxSockPath {
			return fmt.Errorf("socket path %s is longer than a unix socket allows (%d bytes)", p, maxSockPath)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale socket: %w", err)
		}
	}
	if l.jail != nil {
		if err := l.jail.stage(d.opts.Jailer, spec, l.spec); err != nil {
			return err
		}
		if l.restoreState != "" {
			if err := l.jail.stageRestore(l.restoreState, l.restoreMem); err != nil {
				return err
			}
			l.restoreState = filepath.Join(jailSnapDir, StateFile)
			l.restoreMem = filepath.Join(jailSnapDir, MemFile)
		}
	}
	return nil
}

// spawn starts the process in its own session, so that neither the
// daemon's exit nor a terminal's signals reach it, with stdout (the serial
// console) and stderr on files it inherits directly.
func (d *Driver) spawn(l *launch, spec vmm.Spec) (*machine, error) {
	stdout, err := os.OpenFile(l.console, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open console log: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(l.stderr, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open firecracker log: %w", err)
	}
	defer stderr.Close()
	cmd := exec.Command(l.argv[0], l.argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr // stdin stays /dev/null: never a TTY
	cmd.ExtraFiles = spec.Inherit           // the disks' flocks live as long as the process
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	d.log.Info("firecracker: starting", "argv", strings.Join(l.argv, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", l.argv[0], err)
	}
	// Read now, while the PID cannot have been reused: the child is not
	// reaped until watchChild runs.
	_, ticks, err := procStat(cmd.Process.Pid)
	if err != nil {
		d.log.Warn("firecracker: read start time", "err", err)
	}
	m := &machine{
		h: vmm.Handles{
			Driver: DriverName, PID: cmd.Process.Pid, StartTicks: ticks,
			ControlSock: l.apiSock, AgentSock: l.vsock, ConsoleLog: l.console,
			StartedAt: time.Now(),
		},
		api:      d.client(l.apiSock),
		proc:     cmd.Process,
		log:      d.log.With("vm", spec.ID),
		killWait: d.opts.KillWait,
		cleanup:  removeFiles(d.log, l.leftover...),
		done:     make(chan struct{}),
	}
	if spec.Net != nil {
		m.h.TAP = spec.Net.TAP
	}
	if l.jail != nil {
		m.jailRoot = l.jail.Root
	} else {
		m.drives = drivesOf(spec)
	}
	go m.watchChild(cmd.Wait)
	return m, nil
}

func (d *Driver) client(sock string) *Client {
	c := NewClient(sock, d.log)
	c.CallTimeout = d.opts.CallTimeout
	return c
}

// boot waits for the API, reads the version, and runs the boot plan.
func (d *Driver) boot(ctx context.Context, m *machine, l *launch) error {
	v, err := d.waitAPI(ctx, m, l)
	if err != nil {
		return err
	}
	m.log.Info("firecracker: api ready", "version", v.String())
	plan := bootPlan(l.spec, l.files, v)
	if l.restoreState != "" {
		plan = restorePlan(l.spec, l.files, l.restoreState, l.restoreMem, v)
	}
	if err := runPlan(ctx, m.api, plan); err != nil {
		return d.explain(err, m, l)
	}
	return nil
}

// waitAPI polls GET /version until it answers, the process exits, or the
// socket timeout passes. Polling a real request, not stat(2), is what
// proves the server is accepting.
func (d *Driver) waitAPI(ctx context.Context, m *machine, l *launch) (Version, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.SocketTimeout)
	defer cancel()
	for {
		v, err := m.api.Version(ctx)
		if err == nil {
			return v, nil
		}
		if _, ok := IsAPIError(err); ok {
			return Version{}, err
		}
		select {
		case <-m.done:
			return Version{}, exitedEarly(m, l)
		case <-ctx.Done():
			return Version{}, fmt.Errorf("api socket %s not ready: %w (last error: %v)", l.apiSock, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// explain adds the process's fate to a failed call. A 400 comes from a
// live process and says enough; a broken connection usually means
// Firecracker died, and its log says why.
func (d *Driver) explain(err error, m *machine, l *launch) error {
	if _, ok := IsAPIError(err); ok {
		return err
	}
	select {
	case <-m.done:
		return fmt.Errorf("%w; %w", err, exitedEarly(m, l))
	case <-time.After(time.Second):
		return err
	}
}

func exitedEarly(m *machine, l *launch) error {
	status := "exited"
	if err := m.exitError(); err != nil {
		status = err.Error()
	}
	tail := logTail(l.stderr, 2048)
	if tail == "" {
		tail = logTail(l.console, 2048)
	}
	return fmt.Errorf("firecracker %s during start-up: %s", status, tail)
}

// logTail returns up to n bytes from the end of a log, trimmed.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	return strings.TrimSpace(string(b))
}

// instanceID is the --id: alphanumerics and '-', at most 64 characters.
// For a VM it is vmm.Marker(spec.ID), so a Firecracker whose handles were
// never written is found by its argv.
func instanceID(spec vmm.Spec) string {
	src := spec.Name
	if spec.ID != "" {
		src = vmm.Marker(spec.ID)
	}
	id := []byte(src)
	for i, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			id[i] = '-'
		}
	}
	s := strings.Trim(string(id), "-")
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		return "banger"
	}
	return s
}
