package config

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Floors and caps for VM sizing.
const (
	MinMemoryMiB   = 256
	MinDiskBytes   = 1 << 30
	FloorVCPU      = 1
	FloorMemoryMiB = 1024
	FloorDiskBytes = 8 << 30
	MaxAutoVCPU    = 4
	MaxAutoMemory  = 8 << 10 // MiB
	MaxVCPU        = 64
	MaxMemoryMiB   = 1 << 20
	MaxDiskBytes   = 16 << 40
)

// Spec is a resolved VM size with where each value came from.
type Spec struct {
	VCPU       int    `json:"vcpu"`
	MemoryMiB  int    `json:"memory_mib"`
	DiskBytes  int64  `json:"disk_bytes"`
	VCPUFrom   string `json:"vcpu_from"` // flag | config | auto | builtin
	MemoryFrom string `json:"memory_from"`
	DiskFrom   string `json:"disk_from"`
}

// Host describes the machine for sizing heuristics; zero fields are unknown.
type Host struct {
	CPUs      int
	MemoryMiB int
}

// ProbeHost reads the CPU count and RAM of this machine.
func ProbeHost() Host {
	h := Host{CPUs: runtime.NumCPU()}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		h.MemoryMiB = int(uint64(si.Totalram) * uint64(si.Unit) >> 20)
	}
	return h
}

// Resolve fills a spec from explicit values (zero = unset), then config
// defaults, then host heuristics, then built-in floors, and validates it.
func Resolve(vcpu, memMiB int, disk int64, d VMDefaults, h Host) (Spec, error) {
	s := Spec{VCPU: vcpu, MemoryMiB: memMiB, DiskBytes: disk, VCPUFrom: "flag", MemoryFrom: "flag", DiskFrom: "flag"}
	switch {
	case vcpu != 0:
	case d.VCPU > 0:
		s.VCPU, s.VCPUFrom = d.VCPU, "config"
	case h.CPUs > 0:
		s.VCPU, s.VCPUFrom = min(max(h.CPUs/4, 1), MaxAutoVCPU), "auto"
	default:
		s.VCPU, s.VCPUFrom = FloorVCPU, "builtin"
	}
	switch {
	case memMiB != 0:
	case d.MemoryMiB > 0:
		s.MemoryMiB, s.MemoryFrom = d.MemoryMiB, "config"
	case h.MemoryMiB > 0:
		s.MemoryMiB, s.MemoryFrom = min(max(h.MemoryMiB/8, MinMemoryMiB), MaxAutoMemory), "auto"
	default:
		s.MemoryMiB, s.MemoryFrom = FloorMemoryMiB, "builtin"
	}
	switch {
	case disk != 0:
	case d.DiskSize != "":
		n, err := ParseSize(d.DiskSize)
		if err != nil {
			return s, fmt.Errorf("vm_defaults.disk_size: %w", err)
		}
		s.DiskBytes, s.DiskFrom = n, "config"
	default:
		s.DiskBytes, s.DiskFrom = FloorDiskBytes, "builtin"
	}
	return s, s.Validate()
}

// Validate checks a spec against floors and caps.
func (s Spec) Validate() error {
	if s.VCPU < 1 || s.VCPU > MaxVCPU {
		return fmt.Errorf("vcpu %d out of range: want 1..%d", s.VCPU, MaxVCPU)
	}
	if s.MemoryMiB < MinMemoryMiB || s.MemoryMiB > MaxMemoryMiB {
		return fmt.Errorf("memory %d MiB out of range: want at least %d MiB", s.MemoryMiB, MinMemoryMiB)
	}
	if s.DiskBytes < MinDiskBytes || s.DiskBytes > MaxDiskBytes {
		return fmt.Errorf("disk size %s out of range: want at least %s", FormatSize(s.DiskBytes), FormatSize(MinDiskBytes))
	}
	return nil
}

// String is the one-line form printed before boot.
func (s Spec) String() string {
	return fmt.Sprintf("%d vcpu · %s memory · %s disk", s.VCPU, FormatSize(int64(s.MemoryMiB)<<20), FormatSize(s.DiskBytes))
}

// ParseSize parses "512M", "8G", "1T", "1024" (bytes); suffixes are binary.
func ParseSize(v string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(v))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q: want a positive number with an optional K, M, G or T suffix", v)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q: too large", v)
	}
	return n * mult, nil
}

// FormatSize renders bytes with a binary suffix.
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d %s", int64(f), units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
