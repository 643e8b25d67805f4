// Package proto is the contract between the host and banger-agent: the
// per-VM configuration the agent applies at boot (delivered on a config
// drive), the initramfs layout, and the framed protocol spoken over the
// guest channel (virtio-serial or vsock).
package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Initramfs layout shared by the kernel importer and the agent.
const (
	// ModulesDir holds the kernel modules the agent loads at boot.
	ModulesDir = "/lib/modules/banger"
	// ModulesOrder lists file names in ModulesDir, one per line, in the
	// order they must be loaded (dependencies first).
	ModulesOrder = ModulesDir + "/load.order"
	// AgentRuntimePath is where the agent copies itself inside the guest
	// (on a tmpfs at /run) so it keeps serving after switch_root.
	AgentRuntimePath = "/run/banger/banger-agent"
	// SerialPortName is the virtio-serial port name the agent serves on.
	SerialPortName = "banger.agent"
	// VsockPort is the vsock port the agent listens on.
	VsockPort = 1024
)

// Disk roles in GuestConfig.Disks.
const (
	RoleBase    = "base"    // the image, read-only lower layer
	RoleOverlay = "overlay" // per-VM upper layer of the root overlayfs
	RoleWork    = "work"    // per-VM persistent disk mounted at /root
	// RoleModules is the kernel's module tree (read-only, shared by every
	// VM of the kernel), mounted at /lib/modules/<uname -r>. Optional: a
	// kernel without one lists no such disk.
	RoleModules = "modules"
)

// GuestDisk names a disk by the UUID of its ext4 filesystem.
type GuestDisk struct {
	Role string `json:"role"`
	UUID string `json:"uuid,omitempty"` // empty for base: the remaining ext4 disk
}

// GuestNet is the static network configuration of the guest's NIC.
type GuestNet struct {
	MAC     string   `json:"mac"`
	Address string   `json:"address"` // CIDR, e.g. 172.30.0.2/24
	Gateway string   `json:"gateway,omitempty"`
	DNS     []string `json:"dns,omitempty"`
}

// GuestFile is a file the agent writes into the guest at boot.
type GuestFile struct {
	Path    string `json:"path"`
	Mode    uint32 `json:"mode"`
	Content []byte `json:"content"`
}

// GuestConfig is everything per-VM the agent applies at boot.
type GuestConfig struct {
	Version        int         `json:"version"`
	Hostname       string      `json:"hostname"`
	Disks          []GuestDisk `json:"disks"`
	Net            *GuestNet   `json:"net,omitempty"`
	AuthorizedKeys []string    `json:"authorized_keys,omitempty"`
	// SSHHostKeys maps a file name under /etc/ssh (ssh_host_ed25519_key,
	// ssh_host_ed25519_key.pub) to its contents. Other host keys the image
	// carries are removed, so every VM has its own identity.
	SSHHostKeys map[string]string `json:"ssh_host_keys,omitempty"`
	Files       []GuestFile       `json:"files,omitempty"`
	// Init is the program that becomes PID 1 after the root is assembled
	// ("/sbin/init" when empty). When it does not exist in the image the
	// agent stays PID 1 itself.
	Init string `json:"init,omitempty"`
}

// ConfigVersion is the GuestConfig version this build writes.
const ConfigVersion = 1

// configMagic starts a config drive; the agent finds the drive by it.
var configMagic = []byte("BANGER-CONFIG-V1\n")

// ConfigDriveSector is the unit config drives are padded to.
const ConfigDriveSector = 4096

// EncodeConfigDrive renders cfg as the raw contents of a config drive:
// magic, a decimal length line, the JSON, zero padding to a 4 KiB multiple.
func EncodeConfigDrive(cfg GuestConfig) ([]byte, error) {
	body, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode guest config: %w", err)
	}
	var b bytes.Buffer
	b.Write(configMagic)
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteByte('\n')
	b.Write(body)
	if pad := b.Len() % ConfigDriveSector; pad != 0 {
		b.Write(make([]byte, ConfigDriveSector-pad))
	}
	return b.Bytes(), nil
}

// ErrNotConfigDrive means a device does not start with the config magic.
var ErrNotConfigDrive = errors.New("not a banger config drive")

// DecodeConfigDrive parses what EncodeConfigDrive wrote.
func DecodeConfigDrive(r io.Reader) (GuestConfig, error) {
	var cfg GuestConfig
	head := make([]byte, len(configMagic))
	if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, configMagic) {
		return cfg, ErrNotConfigDrive
	}
	var num []byte
	one := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, one); err != nil {
			return cfg, fmt.Errorf("read config length: %w", err)
		}
		if one[0] == '\n' {
			break
		}
		if len(num) > 10 {
			return cfg, errors.New("read config length: too long")
		}
		num = append(num, one[0])
	}
	n, err := strconv.Atoi(string(num))
	if err != nil || n < 0 || n > 64<<20 {
		return cfg, fmt.Errorf("read config length: bad value %q", num)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return cfg, fmt.Errorf("decode guest config: %w", err)
	}
	return cfg, nil
}
