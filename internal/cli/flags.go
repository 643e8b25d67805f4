package cli

import (
	"fmt"

	"github.com/banger-dev/banger/internal/config"
)

// memoryValue is --memory: "2G", "1.5G", "512M" or plain MiB, parsed by
// config.ParseMemoryMiB (the one size parser, shared with config.toml),
// so a bad size is a flag error (exit 2) before anything is called.
type memoryValue struct {
	raw string
	mib *int
}

func (m *memoryValue) String() string { return m.raw }

func (m *memoryValue) Set(v string) error {
	n, err := config.ParseMemoryMiB(v)
	if err != nil {
		return err
	}
	m.raw, *m.mib = v, n
	return nil
}

func (m *memoryValue) Type() string { return "size" }

// check refuses a memory size below the floor, naming what was typed.
func (m *memoryValue) check() error {
	if *m.mib < config.MinMemoryMiB {
		return usageError{fmt.Errorf("--memory %s: must be at least %d MiB", m.raw, config.MinMemoryMiB)}
	}
	return nil
}

// diskValue is --disk-size: "8G", "1.5T", ... (a plain number is bytes),
// parsed by config.ParseSize; the text goes to the daemon as typed.
type diskValue struct{ raw *string }

func (d diskValue) String() string { return *d.raw }

func (d diskValue) Set(v string) error {
	n, err := config.ParseSize(v)
	if err != nil {
		return err
	}
	if n < config.MinDiskBytes {
		hint := ""
		if allDigits(v) {
			hint = fmt.Sprintf(" (a plain number is bytes: %sG or %sM?)", v, v)
		}
		return fmt.Errorf("%s is below the minimum of %s%s", config.FormatSize(n), config.FormatSize(config.MinDiskBytes), hint)
	}
	if n > config.MaxDiskBytes { // else the daemon refuses it, as a failure (exit 1)
		return fmt.Errorf("%s is above the maximum of %s", config.FormatSize(n), config.FormatSize(config.MaxDiskBytes))
	}
	*d.raw = v
	return nil
}

func (d diskValue) Type() string { return "size" }

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
