// Package vmdir is the one place that knows where a VM's files live: its
// persistent directory under the state dir (disks, config drive, host
// key, console log, boot-stall evidence) and its runtime directory under
// the runtime dir (handles, launch intent, the VMM's sockets and
// pidfile). Everything that opens a VM's file asks a Dir for its path.
package vmdir

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/vmm"
)

// File names inside a VM's directories.
const (
	overlayFile    = "overlay.ext4"
	workFile       = "work.ext4"
	configFile     = "config.img"
	hostKeyFile    = "ssh_host_ed25519_key"
	consoleFile    = "console.log"
	bootStallFile  = "boot-stall.txt"
	handlesFile    = "handles.json"
	launchFile     = "launch.json"
	qemuPIDFile    = "qemu.pid" // = qemu.PIDFile, which the driver writes
	handlesTmpFile = ".handles.json.tmp"
	launchTmpFile  = ".launch.json.tmp"
)

// Dir is one VM's file layout.
type Dir struct {
	state   string // kept across boots: disks, keys, console
	runtime string // one boot's: handles, sockets, pidfile
}

// For is the layout of the VM with id under paths.
func For(p config.Paths, id string) Dir {
	return Dir{state: filepath.Join(p.StateDir, "vms", id), runtime: filepath.Join(p.RuntimeDir, "vms", id)}
}

// Path is the VM's persistent directory (`vm show`'s dir).
func (d Dir) Path() string { return d.state }

// Runtime is the VM's runtime directory (vmm.Spec.Dir): the VMM's
// sockets and pidfile, handles.json, launch.json.
func (d Dir) Runtime() string { return d.runtime }

// Overlay is the VM's writable overlay disk (the root's upper layer).
func (d Dir) Overlay() string { return filepath.Join(d.state, overlayFile) }

// Work is the VM's work disk (/root).
func (d Dir) Work() string { return filepath.Join(d.state, workFile) }

// Disks are the VM's own writable disks, overlay then work.
func (d Dir) Disks() []string { return []string{d.Overlay(), d.Work()} }

// ConfigDrive is the raw config drive the agent reads at every boot.
func (d Dir) ConfigDrive() string { return filepath.Join(d.state, configFile) }

// HostKey is the VM's ed25519 SSH host key; HostKeyPub its public half.
func (d Dir) HostKey() string    { return filepath.Join(d.state, hostKeyFile) }
func (d Dir) HostKeyPub() string { return d.HostKey() + ".pub" }

// ConsoleLog is the guest's serial console as the VMM writes it.
func (d Dir) ConsoleLog() string { return filepath.Join(d.state, consoleFile) }

// BootStall is where a hung boot's evidence is written.
func (d Dir) BootStall() string { return filepath.Join(d.state, bootStallFile) }

// Handles is the running VMM's record (PID, start time, sockets).
func (d Dir) Handles() string { return filepath.Join(d.runtime, handlesFile) }

// LaunchIntent records that a VMM is being started (see WriteLaunchIntent).
func (d Dir) LaunchIntent() string { return filepath.Join(d.runtime, launchFile) }

// QEMUPIDFile is the pidfile QEMU writes in the runtime dir.
func (d Dir) QEMUPIDFile() string { return filepath.Join(d.runtime, qemuPIDFile) }

// WriteHandles records a started VMM's handles, atomically.
func (d Dir) WriteHandles(h vmm.Handles) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(d.runtime, handlesTmpFile), d.Handles(), b)
}

// ReadHandles reads what WriteHandles wrote.
func (d Dir) ReadHandles() (vmm.Handles, error) {
	var h vmm.Handles
	b, err := os.ReadFile(d.Handles())
	if err != nil {
		return h, err
	}
	err = json.NewDecoder(bytes.NewReader(b)).Decode(&h)
	return h, err
}

// LaunchIntentRecord is the content of launch.json.
type LaunchIntentRecord struct {
	Driver  string    `json:"driver"`
	Marker  string    `json:"marker"`
	Started time.Time `json:"started"`
}

// WriteLaunchIntent records, before a VMM starts, which driver starts it
// and the marker its argv carries (creating the runtime dir).
func (d Dir) WriteLaunchIntent(driver, marker string) error {
	if err := os.MkdirAll(d.runtime, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(LaunchIntentRecord{Driver: driver, Marker: marker, Started: time.Now().UTC()})
	return writeAtomic(filepath.Join(d.runtime, launchTmpFile), d.LaunchIntent(), b)
}

// LaunchInProgress says whether launch.json exists.
func (d Dir) LaunchInProgress() bool {
	_, err := os.Stat(d.LaunchIntent())
	return err == nil
}

func writeAtomic(tmp, path string, b []byte) error {
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
