package kernel

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/kernel/vmlinux"
)

// VmlinuxFile is the ELF kernel extracted from the bzImage: Firecracker
// boots only ELF, so one imported kernel serves both drivers.
const VmlinuxFile = "vmlinux"

// EnsureELF extracts dir/vmlinux from dir/vmlinuz when it is missing.
func EnsureELF(dir string) error {
	out := filepath.Join(dir, VmlinuxFile)
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	in, err := os.Open(filepath.Join(dir, VmlinuzFile))
	if err != nil {
		return fmt.Errorf("extract vmlinux: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".vmlinux-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := vmlinux.ExtractELF(in, st.Size(), tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("extract vmlinux from %s: %w", in.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
