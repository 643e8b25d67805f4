package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Config is the parsed ~/.config/banger/config.toml. Zero values mean
// "use the default"; Defaults() fills them.
type Config struct {
	VMM            string      `toml:"vmm"` // auto | qemu | firecracker
	DefaultImage   string      `toml:"default_image"`
	DefaultKernel  string      `toml:"default_kernel"`
	QEMUBin        string      `toml:"qemu_bin"`
	FirecrackerBin string      `toml:"firecracker_bin"`
	Firecracker    Firecracker `toml:"firecracker"`
	QEMUAccel      string      `toml:"qemu_accel"` // auto | kvm | tcg
	AgentBin       string      `toml:"agent_bin"`
	BootTimeout    Duration    `toml:"boot_timeout"`
	// BootStallTimeout is how long a booting guest may stay silent (no
	// console output, no agent) before banger restarts its VMM once.
	BootStallTimeout Duration `toml:"boot_stall_timeout"`
	// StatsPollInterval is how often the daemon samples running guests
	// for `vm stats`.
	StatsPollInterval Duration   `toml:"stats_poll_interval"`
	VMDefaults        VMDefaults `toml:"vm_defaults"`
	Network           Network    `toml:"network"`
	// FileSync ([[file_sync]]) is copied into every VM at start. A
	// pointer keeps Config comparable.
	FileSync *[]FileSync `toml:"file_sync"`
	// ImageCatalog and KernelCatalog replace the built-in catalogs with
	// JSON documents at a URL or path (see `banger image export`).
	ImageCatalog  string `toml:"image_catalog"`
	KernelCatalog string `toml:"kernel_catalog"`
	// Snapshots ([snapshots]) configures warm starts.
	Snapshots Snapshots `toml:"snapshots"`
	// API ([api]) is the HTTP API for programs (E2B-compatible); off
	// unless listen is set.
	API API `toml:"api"`
}

// Snapshots is the [snapshots] table.
type Snapshots struct {
	// Warm (default true) starts new VMs from a start-up snapshot of a
	// VM of the same image, kernel, size and agent (ARCHITECTURE.md,
	// "Warm starts"). Clones share the snapshot's memory pages
	// copy-on-write: set it to false where VMs must not share memory.
	Warm *bool `toml:"warm"`
}

// WarmStarts reports whether [snapshots] warm is on (the default).
func (c Config) WarmStarts() bool { return c.Snapshots.Warm == nil || *c.Snapshots.Warm }

// FileSyncEntries returns the [[file_sync]] entries.
func (c Config) FileSyncEntries() []FileSync {
	if c.FileSync == nil {
		return nil
	}
	return *c.FileSync
}

// VMDefaults are the sizes used when a create request leaves them out.
type VMDefaults struct {
	VCPU      int    `toml:"vcpu"`
	MemoryMiB MemMiB `toml:"memory"`    // MiB: 2048, or a size such as "2G"
	DiskSize  string `toml:"disk_size"` // e.g. "8G"
}

// MemMiB is a memory size in MiB as config.toml gives it: an integer
// (MiB, as it always was) or a string parsed by ParseMemoryMiB ("2G").
type MemMiB int

// UnmarshalTOML implements toml.Unmarshaler.
func (m *MemMiB) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 || x > MaxMemoryMiB {
			return fmt.Errorf("memory = %d: want 1..%d (MiB) or a size such as \"2G\"", x, MaxMemoryMiB)
		}
		*m = MemMiB(x)
	case string:
		n, err := ParseMemoryMiB(x)
		if err != nil {
			return err // the key's name is added by Load
		}
		*m = MemMiB(n)
	default:
		return fmt.Errorf("memory = %v: want an integer (MiB) or a size string such as \"2G\" or \"1.5G\"", v)
	}
	return nil
}

// Firecracker configures the optional jailer. With jailer = true,
// Firecracker runs chrooted as uid/gid (which must not be root); the
// jailer itself needs root to set that up.
type Firecracker struct {
	Jailer     bool   `toml:"jailer"`
	UID        int    `toml:"uid"`
	GID        int    `toml:"gid"`
	ChrootBase string `toml:"chroot_base"`
}

// Network configures the host side of VM networking.
type Network struct {
	Bridge string `toml:"bridge"`
	Subnet string `toml:"subnet"`
	// DNSPort is where banger's DNS server listens on the bridge address;
	// guests reach it on port 53 through a redirect.
	DNSPort int `toml:"dns_port"`
	// GuestsReachHost lets guests connect to every service listening on
	// the host's bridge address; by default only banger's DNS answers
	// them there (guests run untrusted code).
	GuestsReachHost bool `toml:"guests_reach_host"`
	// DefaultPolicy is new VMs' network mode: "nat" (the public internet;
	// no private range or host LAN) or "isolated" (nothing leaves).
	// DefaultAllowOut and DefaultDenyOut are their allow/deny rules,
	// comma-separated ("10.0.0.0/8,192.168.0.0/16" gives back the reach
	// of banger before issue 16). Strings, not arrays, keep Config
	// comparable.
	DefaultPolicy   string `toml:"default_policy"`
	DefaultAllowOut string `toml:"default_allow_out"`
	DefaultDenyOut  string `toml:"default_deny_out"`
	// AutoForward forwards every TCP port a guest listens on to the same
	// port on 127.0.0.1 (else the next free one); per VM --auto-forward.
	AutoForward bool `toml:"auto_forward"`
}

// Duration is a time.Duration written as "90s" in TOML.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Built-in defaults.
const (
	DefaultImageName  = "debian-bookworm"
	DefaultKernelName = "debian-cloud"
	DefaultBridge     = "banger0"
	DefaultSubnet     = "10.77.0.0/24"
	DefaultDNSPort    = 42069
	DefaultBoot       = 180 * time.Second
	DefaultBootStall  = 60 * time.Second
	DefaultStatsPoll  = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.VMM == "" {
		c.VMM = "auto"
	}
	if c.QEMUAccel == "" {
		c.QEMUAccel = "auto"
	}
	if c.DefaultImage == "" {
		c.DefaultImage = DefaultImageName
	}
	if c.DefaultKernel == "" {
		c.DefaultKernel = DefaultKernelName
	}
	if c.StatsPollInterval.Duration == 0 {
		c.StatsPollInterval.Duration = DefaultStatsPoll
	}
	if c.BootTimeout.Duration == 0 {
		c.BootTimeout.Duration = DefaultBoot
	}
	if c.BootStallTimeout.Duration == 0 {
		c.BootStallTimeout.Duration = DefaultBootStall
	}
	if c.Network.Bridge == "" {
		c.Network.Bridge = DefaultBridge
	}
	if c.Network.Subnet == "" {
		c.Network.Subnet = DefaultSubnet
	}
	if c.Network.DNSPort == 0 {
		c.Network.DNSPort = DefaultDNSPort
	}
	return c
}

var ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// Validate checks values that have a fixed set of meanings.
func (c Config) Validate() error {
	switch c.VMM {
	case "auto", "qemu", "firecracker":
	default:
		return badKey("vmm", "vmm = %q: want auto, qemu or firecracker", c.VMM)
	}
	switch c.QEMUAccel {
	case "auto", "kvm", "tcg":
	default:
		return badKey("qemu_accel", "qemu_accel = %q: want auto, kvm or tcg", c.QEMUAccel)
	}
	if c.Firecracker.Jailer && (c.Firecracker.UID <= 0 || c.Firecracker.GID <= 0) {
		return badKey("firecracker.jailer", "firecracker.jailer = true needs uid and gid of an unprivileged user")
	}
	if !ifaceName.MatchString(c.Network.Bridge) {
		return badKey("network.bridge", "network.bridge = %q: not a valid interface name", c.Network.Bridge)
	}
	if c.Network.DNSPort < 1 || c.Network.DNSPort > 65535 {
		return badKey("network.dns_port", "network.dns_port = %d: want 1..65535", c.Network.DNSPort)
	}
	p, err := netip.ParsePrefix(c.Network.Subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 29 || p.Bits() < 16 {
		return badKey("network.subnet", "network.subnet = %q: want an IPv4 prefix between /16 and /29", c.Network.Subnet)
	}
	if c.StatsPollInterval.Duration < time.Second {
		return badKey("stats_poll_interval", "stats_poll_interval: at least 1s")
	}
	if c.BootStallTimeout.Duration < time.Second || c.BootStallTimeout.Duration > c.BootTimeout.Duration {
		return badKey("boot_stall_timeout", "boot_stall_timeout = %s: want at least 1s and at most boot_timeout (%s)", c.BootStallTimeout.Duration, c.BootTimeout.Duration)
	}
	if c.VMDefaults.VCPU < 0 {
		return badKey("vm_defaults.vcpu", "vm_defaults: vcpu and memory must be positive")
	}
	if c.VMDefaults.MemoryMiB < 0 {
		return badKey("vm_defaults.memory", "vm_defaults: vcpu and memory must be positive")
	}
	// What Resolve would refuse at every vm create is refused here.
	if c.VMDefaults.VCPU > MaxVCPU {
		return badKey("vm_defaults.vcpu", "vm_defaults.vcpu = %d: at most %d", c.VMDefaults.VCPU, MaxVCPU)
	}
	if m := c.VMDefaults.MemoryMiB; m != 0 && (m < MinMemoryMiB || m > MaxMemoryMiB) {
		return badKey("vm_defaults.memory", "vm_defaults.memory = %d (MiB): want %d..%d", m, MinMemoryMiB, MaxMemoryMiB)
	}
	if c.VMDefaults.DiskSize != "" {
		n, err := ParseSize(c.VMDefaults.DiskSize)
		if err == nil && (n < MinDiskBytes || n > MaxDiskBytes) {
			err = fmt.Errorf("%s: want %s..%s", c.VMDefaults.DiskSize, FormatSize(MinDiskBytes), FormatSize(MaxDiskBytes))
		}
		if err != nil {
			return &keyError{"vm_defaults.disk_size", fmt.Errorf("vm_defaults.disk_size: %w", err)}
		}
	}
	if err := validateFileSync(c.FileSyncEntries()); err != nil {
		return &keyError{"file_sync", err}
	}
	return c.API.validate()
}
