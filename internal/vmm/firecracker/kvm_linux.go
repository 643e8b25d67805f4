package firecracker

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

const (
	kvmGetAPIVersion = 0xae00 // _IO(KVMIO, 0x00); not in x/sys/unix
	// kvmAPIVersion is the only answer any kernel gives.
	kvmAPIVersion = 12
)

// checkKVM says why dev cannot run Firecracker guests, or nil. It opens
// the device the way Firecracker does (read-write) and asks its API version,
// which catches a missing module and a permission problem alike.
func checkKVM(dev, sysModuleDir string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("kvm: %w", err)
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	if err != nil {
		return fmt.Errorf("kvm: KVM_GET_API_VERSION on %s: %w", dev, err)
	}
	if v != kvmAPIVersion {
		return fmt.Errorf("kvm: %s reports API version %d, want %d", dev, v, kvmAPIVersion)
	}
	// Only one vendor module can serve /dev/kvm at a time, so a loaded
	// kvm_pvm means PVM is the backend: it runs only kernels built with
	// CONFIG_PVM_GUEST, which banger's kernels are not.
	if _, err := os.Stat(filepath.Join(sysModuleDir, "kvm_pvm")); err == nil {
		return fmt.Errorf("kvm: %s is served by PVM (kvm_pvm), which boots only PVM guest kernels; firecracker cannot run standard guests here", dev)
	}
	return nil
}
