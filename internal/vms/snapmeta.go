package vms

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/buildinfo"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vmm"
)

// stateMeta is meta.json in a saved state or snapshot directory: what a
// restore checks before it starts a VMM from the state.
type stateMeta struct {
	// Format is stateFormat of the banger that wrote it (0 in states
	// written before the field existed, which are format 1).
	Format        int       `json:"format"`
	Created       time.Time `json:"created"`
	VM            string    `json:"vm"` // id
	Driver        string    `json:"driver"`
	VMMVersion    string    `json:"vmm_version"`
	BangerVersion string    `json:"banger_version"`
	// Layout is the machine's shape (machineLayout): a VMM loads a state
	// only into the same vCPUs, memory and devices in the same order.
	Layout string `json:"layout"`
	Bytes  int64  `json:"bytes"` // allocated on disk, the whole directory
}

// stateFormat is the version of banger's saved-state and snapshot
// directory layout (vmdir, meta.json); raising it makes every older state
// refused with what to do instead of failing half-way through a restore.
const stateFormat = 1

// machineLayout renders what a restore must match: vCPUs, memory, the
// disks in order (id, read-only), the NIC. Paths, the TAP, the MAC and
// sockets may differ.
func machineLayout(spec vmm.Spec) string {
	var disks []string
	for _, d := range spec.Disks {
		id := d.ID
		if d.ReadOnly {
			id += ":ro"
		}
		disks = append(disks, id)
	}
	return fmt.Sprintf("vcpu=%d mem=%dM disks=%s net=%t", spec.VCPU, spec.MemoryMiB, strings.Join(disks, ","), spec.Net != nil)
}

// layoutOf is the layout a boot of vm would have now, computed without
// side effects (no config drive, no initrd).
func (s *Service) layoutOf(ctx context.Context, vm store.VM) (string, error) {
	plan, err := s.planFor(ctx, vm)
	if err != nil {
		return "", err
	}
	disks, _ := s.diskSet(vm, plan)
	return machineLayout(vmm.Spec{VCPU: vm.VCPU, MemoryMiB: vm.MemoryMiB, Disks: disks, Net: &vmm.NetIface{}}), nil
}

func bangerVersion() string { return buildinfo.Current("").String() }

func writeMeta(dir string, m stateMeta) error {
	m.Format = stateFormat
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(vmdir.Meta(dir), b, 0o600)
}

// readMeta reads a saved state's or snapshot's meta.json; a missing or
// unreadable one is an error that names the directory.
func readMeta(dir string) (stateMeta, error) {
	var m stateMeta
	b, err := os.ReadFile(vmdir.Meta(dir))
	if err != nil {
		return m, fmt.Errorf("%s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Driver == "" {
		return m, fmt.Errorf("%s: meta.json is corrupt", dir)
	}
	if m.Format == 0 {
		m.Format = 1
	}
	return m, nil
}

// checkRestorable refuses, before anything changes, a state that the
// VM's driver cannot load into the VM as it is now: another driver,
// another banger state format, another VMM version, another machine
// layout. what is "the saved state" or "snapshot NAME"; instead says
// what to do; only says, for a snapshot, who could still restore it.
func (s *Service) checkRestorable(ctx context.Context, vm store.VM, m stateMeta, what, only, instead string) error {
	if m.Driver != vm.VMM {
		return fmt.Errorf("%s of vm %s was written by the %s driver, and the VM now uses %s: %s", what, vm.Name, m.Driver, vm.VMM, instead)
	}
	if m.Format != stateFormat {
		return fmt.Errorf("%s of vm %s is in banger's state format %d (written by banger %s), and this banger reads format %d: %s",
			what, vm.Name, m.Format, m.BangerVersion, stateFormat, instead)
	}
	if drv, ok := s.Drivers.lookup(vm.VMM); ok {
		if v, ok := drv.(vmm.Versioner); ok {
			cur, err := v.Version(ctx)
			if err != nil {
				return fmt.Errorf("%s of vm %s was written by %s %s, and the %s version of this host cannot be read (%v), so it cannot be loaded safely: %s",
					what, vm.Name, m.Driver, m.VMMVersion, m.Driver, err, instead)
			}
			if cur != m.VMMVersion {
				if only != "" {
					instead = fmt.Sprintf(only, m.Driver+" "+m.VMMVersion) + "; " + instead
				}
				return fmt.Errorf("%s of vm %s was written by %s %s, and this host runs %s %s, which cannot load it: %s",
					what, vm.Name, m.Driver, m.VMMVersion, m.Driver, cur, instead)
			}
		}
	}
	layout, err := s.layoutOf(ctx, vm)
	if err != nil {
		return err
	}
	if layout != m.Layout {
		return fmt.Errorf("%s of vm %s is of a machine with %s; the VM is now %s (changed with `banger vm set`, or a banger with another device layout): %s",
			what, vm.Name, m.Layout, layout, instead)
	}
	return nil
}
