package firecracker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// DriverName is the name under which this driver is configured.
const DriverName = "firecracker"

// Options configure the driver. The zero value is usable.
type Options struct {
	// Binary is the firecracker executable (config firecracker_bin); empty
	// means "firecracker" looked up in PATH.
	Binary string
	// Jailer, when set, starts Firecracker through the jailer.
	Jailer *JailerOptions
	// Logger receives the driver's own messages; nil discards them.
	Logger *slog.Logger
	// SocketTimeout bounds the wait for the API socket after spawning
	// (Firecracker typically needs ~12 ms). Default 5 s.
	SocketTimeout time.Duration
	// CallTimeout bounds each API call; InstanceStart gets five times
	// as much. Default 2 s.
	CallTimeout time.Duration
	// KillWait bounds how long Kill waits for the process to go. Default 5 s.
	KillWait time.Duration
}

// Driver starts Firecracker microVMs.
type Driver struct {
	opts Options
	log  *slog.Logger
	// Host facts, fields so that tests can point them elsewhere.
	kvmDevice    string
	sysModuleDir string

	versionOnce sync.Once
	version     string
	versionErr  error
}

var _ vmm.Driver = (*Driver)(nil)

// New returns a Firecracker driver.
func New(opts Options) *Driver {
	if opts.SocketTimeout <= 0 {
		opts.SocketTimeout = 5 * time.Second
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 2 * time.Second
	}
	if opts.KillWait <= 0 {
		opts.KillWait = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{opts: opts, log: log, kvmDevice: "/dev/kvm", sysModuleDir: "/sys/module"}
}

// Name implements vmm.Driver.
func (d *Driver) Name() string { return DriverName }

// Accel implements vmm.Driver: Firecracker has no software fallback.
func (d *Driver) Accel() string {
	if err := checkKVM(d.kvmDevice, d.sysModuleDir); err != nil {
		return "kvm (unusable: " + err.Error() + ")"
	}
	return "kvm"
}

// Available implements vmm.Driver.
func (d *Driver) Available() error {
	if _, err := d.binary(); err != nil {
		return err
	}
	if j := d.opts.Jailer; j != nil {
		if err := j.check(); err != nil {
			return err
		}
	}
	return checkKVM(d.kvmDevice, d.sysModuleDir)
}

// binary resolves the firecracker executable to an absolute path, so that
// the argv recorded in /proc (checked by Attach) is unambiguous.
func (d *Driver) binary() (string, error) {
	name := d.opts.Binary
	if name == "" {
		name = "firecracker"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("firecracker binary %q not found: set firecracker_bin or add it to PATH", name)
		}
		return "", fmt.Errorf("firecracker binary: %w", err)
	}
	return filepath.Abs(p)
}
