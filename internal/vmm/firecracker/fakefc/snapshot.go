package fakefc

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Pause, resume and snapshots, with the upstream rules the driver relies
// on: PATCH /vm and PUT /snapshot/create only after InstanceStart, create
// only while paused; PUT /snapshot/load only on a fresh process (nothing
// but logger and metrics configured), exactly one of mem_backend and
// mem_file_path, version-gated fields, and a failed load ending the
// process (after the 400 is sent). The state file is the fake's own JSON:
// the configuration the load brings back, and the version that wrote it
// (a different major.minor is refused, like another snapshot format).

// Bodies, from the spec's Vm, SnapshotCreateParams, SnapshotLoadParams.
type vmState struct {
	State *string `json:"state"`
}

type snapshotCreate struct {
	SnapshotPath *string `json:"snapshot_path"`
	MemFilePath  *string `json:"mem_file_path"`
	SnapshotType *string `json:"snapshot_type"`
}

type memoryBackend struct {
	BackendType *string `json:"backend_type"`
	BackendPath *string `json:"backend_path"`
}

type networkOverride struct {
	IfaceID     *string `json:"iface_id"`
	HostDevName *string `json:"host_dev_name"`
}

type snapshotLoad struct {
	SnapshotPath        *string           `json:"snapshot_path"`
	MemFilePath         *string           `json:"mem_file_path"`
	MemBackend          *memoryBackend    `json:"mem_backend"`
	EnableDiffSnapshots *bool             `json:"enable_diff_snapshots"`
	TrackDirtyPages     *bool             `json:"track_dirty_pages"`
	ResumeVM            *bool             `json:"resume_vm"`
	NetworkOverrides    []networkOverride `json:"network_overrides"`
	VsockOverride       *struct {
		UDSPath *string `json:"uds_path"`
	} `json:"vsock_override"`
	ClockRealtime *bool   `json:"clock_realtime"`
	HugePages     *string `json:"huge_pages"`
}

// savedVM is the fake's state file.
type savedVM struct {
	Format   string                      `json:"format"`
	Version  string                      `json:"version"`
	Machine  machineConfig               `json:"machine"`
	Drives   []drive                     `json:"drives"`
	Ifaces   map[string]networkInterface `json:"ifaces"`
	VsockUDS string                      `json:"vsock_uds,omitempty"`
	Cmdline  string                      `json:"cmdline"`
}

const savedFormat = "fake-firecracker-snapshot/1"

func (s *server) patchVM(body []byte) error {
	var v vmState
	if err := decode(body, &v); err != nil {
		return err
	}
	if err := required("state", v.State != nil); err != nil {
		return err
	}
	if err := oneOf("state", v.State, "Paused", "Resumed"); err != nil {
		return err
	}
	if !s.started {
		return faultf("The requested operation is not supported before starting the microVM.")
	}
	s.paused = *v.State == "Paused"
	if s.vsock != nil {
		s.vsock.setPaused(s.paused)
	}
	return nil
}

func (s *server) snapshotCreate(body []byte) error {
	var c snapshotCreate
	if err := decode(body, &c); err != nil {
		return err
	}
	if err := required("snapshot_path", c.SnapshotPath != nil); err != nil {
		return err
	}
	if err := required("mem_file_path", c.MemFilePath != nil); err != nil {
		return err
	}
	if err := oneOf("snapshot_type", c.SnapshotType, "Full", "Diff"); err != nil {
		return err
	}
	if !s.started {
		return faultf("The requested operation is not supported before starting the microVM.")
	}
	if !s.paused {
		return faultf("Cannot create snapshot: the microVM is not paused.")
	}
	saved := savedVM{Format: savedFormat, Version: s.cfg.version, Machine: s.machine, Drives: s.drives,
		Ifaces: s.ifaces, Cmdline: s.restoredCmdline}
	if s.boot != nil {
		saved.Cmdline = s.cmdline()
	}
	if s.vsock != nil {
		saved.VsockUDS = s.vsock.path
	}
	b, _ := json.Marshal(saved)
	if err := os.WriteFile(*c.SnapshotPath, b, 0o600); err != nil {
		return faultf("Cannot create snapshot: %v", err)
	}
	mem, err := os.Create(*c.MemFilePath)
	if err != nil {
		return faultf("Cannot create snapshot: memory file: %v", err)
	}
	defer mem.Close()
	mem.WriteString("fake guest memory\n")
	if err := mem.Truncate(int64(*s.machine.MemSizeMiB) << 20); err != nil { // sparse
		return faultf("Cannot create snapshot: memory file: %v", err)
	}
	return nil
}

// fresh reports whether only logger and metrics were configured.
func (s *server) fresh() bool {
	return !s.started && !s.machineSet && s.boot == nil && len(s.drives) == 0 && len(s.ifaces) == 0 && s.vsock == nil
}

func (s *server) snapshotLoad(body []byte) error {
	var l snapshotLoad
	if err := decode(body, &l); err != nil {
		return err
	}
	unknown := func(f string) error {
		return faultf("An error occurred when deserializing the json body of a request: unknown field `%s`.", f)
	}
	switch {
	case l.HugePages != nil && !s.ver.atLeast(1, 17):
		return unknown("huge_pages")
	case l.VsockOverride != nil && !s.ver.atLeast(1, 16):
		return unknown("vsock_override")
	case l.NetworkOverrides != nil && !s.ver.atLeast(1, 13):
		return unknown("network_overrides")
	}
	if err := required("snapshot_path", l.SnapshotPath != nil); err != nil {
		return err
	}
	if (l.MemBackend == nil) == (l.MemFilePath == nil) {
		return faultf("Either mem_backend or mem_file_path must be present, and not both.")
	}
	mem := l.MemFilePath
	if b := l.MemBackend; b != nil {
		if err := required("backend_type", b.BackendType != nil); err != nil {
			return err
		}
		if err := required("backend_path", b.BackendPath != nil); err != nil {
			return err
		}
		if err := oneOf("backend_type", b.BackendType, "File", "Uffd"); err != nil {
			return err
		}
		if *b.BackendType == "Uffd" {
			return faultf("fake-firecracker: the Uffd memory backend is not emulated")
		}
		mem = b.BackendPath
	}
	if l.VsockOverride != nil {
		if err := required("uds_path", l.VsockOverride.UDSPath != nil); err != nil {
			return err
		}
	}
	if !s.fresh() {
		return faultf("Loading a microVM snapshot not allowed after configuring boot-specific resources.")
	}
	// From here a failure leaves the process unusable: it exits.
	if err := s.load(l, *l.SnapshotPath, *mem); err != nil {
		if !s.cfg.stayAfterFailedLoad {
			go s.exitCode(50*time.Millisecond, exitGeneric)
		}
		return faultf("Load snapshot error: %v", err)
	}
	return nil
}

func (s *server) load(l snapshotLoad, statePath, memPath string) error {
	b, err := os.ReadFile(statePath)
	if err != nil {
		return fmt.Errorf("cannot open snapshot file: %v", err)
	}
	var saved savedVM
	if json.Unmarshal(b, &saved) != nil || saved.Format != savedFormat {
		return fmt.Errorf("cannot deserialize the microVM state from %s: corrupt or not a snapshot", statePath)
	}
	sv, err := parseVersion(saved.Version)
	if err != nil || sv/100 != s.ver/100 {
		return fmt.Errorf("the snapshot of firecracker %s has a data format this firecracker %s does not support", saved.Version, s.cfg.version)
	}
	fi, err := os.Stat(memPath)
	if err != nil {
		return fmt.Errorf("cannot open the memory file: %v", err)
	}
	if want := int64(*saved.Machine.MemSizeMiB) << 20; fi.Size() != want {
		return fmt.Errorf("memory file %s has %d bytes, the snapshot's guest has %d", memPath, fi.Size(), want)
	}
	for _, d := range saved.Drives {
		if err := mustOpen("Unable to restore block device", *d.PathOnHost); err != nil {
			return err
		}
	}
	for _, o := range l.NetworkOverrides {
		n, ok := saved.Ifaces[deref(o.IfaceID)]
		if !ok || o.HostDevName == nil {
			return fmt.Errorf("network override for unknown interface %q", deref(o.IfaceID))
		}
		n.HostDevName = o.HostDevName
		saved.Ifaces[*o.IfaceID] = n
	}
	uds := saved.VsockUDS
	if l.VsockOverride != nil {
		uds = *l.VsockOverride.UDSPath
	}
	if uds != "" {
		dev, err := listenVsock(s, uds)
		if err != nil {
			return fmt.Errorf("cannot restore the vsock device: %v", err)
		}
		s.vsock = dev
	}
	s.machine, s.drives, s.ifaces = saved.Machine, saved.Drives, saved.Ifaces
	s.restoredCmdline = saved.Cmdline
	s.started = true
	s.paused = l.ResumeVM == nil || !*l.ResumeVM
	if s.vsock != nil {
		s.vsock.setPaused(s.paused)
		s.vsock.boot(s.cfg)
	}
	fmt.Fprintf(s.stdout, "[fake] restored from %s (paused=%v); guest command line was: %s\n", statePath, s.paused, saved.Cmdline)
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// exitCode ends the process after d, letting the answer go out first.
func (s *server) exitCode(d time.Duration, code int) {
	time.Sleep(d)
	os.Exit(code)
}
