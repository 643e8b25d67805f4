package config

import (
	"fmt"
	"math/big"
	"runtime"
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
		s.MemoryMiB, s.MemoryFrom = int(d.MemoryMiB), "config"
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
	if s.MemoryMiB < MinMemoryMiB {
		return fmt.Errorf("memory %d MiB out of range: want at least %d MiB", s.MemoryMiB, MinMemoryMiB)
	}
	if s.MemoryMiB > MaxMemoryMiB {
		return fmt.Errorf("memory %d MiB out of range: want at most %s", s.MemoryMiB, FormatSize(MaxMemoryMiB<<20))
	}
	if s.DiskBytes < MinDiskBytes {
		return fmt.Errorf("disk size %s out of range: want at least %s", FormatSize(s.DiskBytes), FormatSize(MinDiskBytes))
	}
	if s.DiskBytes > MaxDiskBytes {
		return fmt.Errorf("disk size %s out of range: want at most %s", FormatSize(s.DiskBytes), FormatSize(MaxDiskBytes))
	}
	return nil
}

// String is the one-line form printed before boot.
func (s Spec) String() string {
	return fmt.Sprintf("%d vcpu · %s memory · %s disk", s.VCPU, FormatSize(int64(s.MemoryMiB)<<20), FormatSize(s.DiskBytes))
}

// ParseSize parses a disk size: "8G", "1.5G", "512M", "1T", "8GiB";
// suffixes are binary (K, M, G, T, optionally followed by i and/or B) and
// a plain number is bytes. It is one of the two faces of the one size
// parser; ParseMemoryMiB is the other.
func ParseSize(v string) (int64, error) { return parseSize(v, 1, "bytes") }

// ParseMemoryMiB parses a memory size: "2G", "1.5G", "512M", "2048"; a
// plain number is MiB (as --memory and config.toml's memory always
// took). The result is a whole number of MiB.
func ParseMemoryMiB(v string) (int, error) {
	n, err := parseSize(v, 1<<20, "MiB")
	if err != nil {
		return 0, err
	}
	if n>>20 > MaxMemoryMiB {
		return 0, fmt.Errorf("bad memory size %q: too large (at most %s)", v, FormatSize(MaxMemoryMiB<<20))
	}
	return int(n >> 20), nil
}

// parseSize is the one size parser: a decimal number ("8", "1.5") with an
// optional binary suffix; plain numbers count in units of plain (named
// plainName in errors), and the result, in bytes, must be a whole,
// positive number of them no larger than 2^62.
func parseSize(v string, plain int64, plainName string) (int64, error) {
	bad := func(why string) error {
		return fmt.Errorf("bad size %q: %s", v, why)
	}
	want := "want a positive number with an optional K, M, G or T suffix (e.g. 512M, 1.5G, 8G; a plain number is " + plainName + ")"
	u := strings.ToUpper(strings.TrimSpace(v))
	hadB := strings.HasSuffix(u, "B") // 8GB, 8GiB, 1024B
	u = strings.TrimSuffix(u, "B")
	hadI := strings.HasSuffix(u, "I")
	u = strings.TrimSuffix(u, "I")
	mult := plain
	unit := ""
	if u != "" {
		unit = u[len(u)-1:]
	}
	if m, ok := sizeUnits[unit]; ok {
		mult, u = m, u[:len(u)-1]
	} else if hadI {
		return 0, bad(want) // "8iB": an i without a unit
	} else if hadB {
		mult = 1
	}
	whole, frac, dotted := strings.Cut(u, ".")
	if whole == "" && frac == "" || !allDigits(whole) || !allDigits(frac) || dotted && frac == "" {
		return 0, bad(want)
	}
	r, ok := new(big.Rat).SetString(u)
	if !ok || r.Sign() <= 0 {
		return 0, bad(want)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if q := new(big.Rat).Quo(r, new(big.Rat).SetInt64(plain)); !q.IsInt() {
		return 0, bad("not a whole number of " + plainName)
	}
	if r.Cmp(new(big.Rat).SetInt64(1<<62)) > 0 {
		return 0, bad("too large")
	}
	return r.Num().Int64(), nil
}

var sizeUnits = map[string]int64{"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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
