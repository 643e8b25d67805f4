package vms

import (
	"fmt"
	"log/slog"
	"sort"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/firecracker"
	"github.com/banger-dev/banger/internal/vmm/qemu"
)

// Drivers holds every VMM driver this daemon knows and the default one.
// Each VM records the driver it was created with and keeps it.
type Drivers struct {
	byName map[string]vmm.Driver
	def    string
	why    string // why the default was chosen
}

// NewDrivers builds the real Drivers and resolves vmm = auto|qemu|firecracker:
// auto takes firecracker when its binary is present and KVM can run the
// guest, else qemu.
func NewDrivers(c config.Config, log *slog.Logger) Drivers {
	var jail *firecracker.JailerOptions
	if c.Firecracker.Jailer {
		jail = &firecracker.JailerOptions{UID: c.Firecracker.UID, GID: c.Firecracker.GID, ChrootBase: c.Firecracker.ChrootBase}
	}
	fc := firecracker.New(firecracker.Options{Binary: c.FirecrackerBin, Jailer: jail, Logger: log})
	q := qemu.New(qemu.Options{Binary: c.QEMUBin, Accel: c.QEMUAccel})
	ds := Drivers{byName: map[string]vmm.Driver{fc.Name(): fc, q.Name(): q}}
	switch c.VMM {
	case "auto":
		if err := fc.Available(); err == nil {
			ds.def, ds.why = fc.Name(), "auto: firecracker binary found and KVM usable"
		} else {
			ds.def, ds.why = q.Name(), "auto: firecracker unavailable ("+err.Error()+")"
		}
	default:
		ds.def, ds.why = c.VMM, "vmm = "+c.VMM+" in config.toml"
	}
	return ds
}

// SingleDriver is used when a test injects one driver.
func SingleDriver(d vmm.Driver) Drivers {
	return Drivers{byName: map[string]vmm.Driver{d.Name(): d}, def: d.Name(), why: "injected"}
}

// get returns a driver by name ("" = default) that can run VMs here.
func (ds Drivers) get(name string) (vmm.Driver, error) {
	if name == "" {
		name = ds.def
	}
	d, ok := ds.byName[name]
	if !ok {
		return nil, api.Invalidf("unknown vmm %q: want one of %v", name, ds.names())
	}
	if err := d.Available(); err != nil {
		return nil, fmt.Errorf("vmm %s cannot run VMs on this host: %w", name, err)
	}
	return d, nil
}

// lookup returns a driver by name without checking availability (for
// re-attaching and stopping VMs that already exist).
func (ds Drivers) lookup(name string) (vmm.Driver, bool) {
	d, ok := ds.byName[name]
	return d, ok
}

func (ds Drivers) names() []string {
	var n []string
	for k := range ds.byName {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
