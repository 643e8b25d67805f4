package firecracker

import "fmt"

// Request and response bodies, from the definitions in the OpenAPI spec.
// Optional fields are pointers or omitempty so that nothing the caller did
// not set is sent: Firecracker rejects unknown fields, and a zero value of a
// field newer than the running binary would be rejected too.

// InstanceInfo is GET /.
type InstanceInfo struct {
	AppName    string `json:"app_name"`
	ID         string `json:"id"`
	State      string `json:"state"` // "Not started", "Running", "Paused"
	VMMVersion string `json:"vmm_version"`
}

// FirecrackerVersion is GET /version.
type FirecrackerVersion struct {
	FirecrackerVersion string `json:"firecracker_version"`
}

// MachineConfig is PUT /machine-config (a full replace: omitted optional
// fields go back to their defaults).
type MachineConfig struct {
	VCPUCount       int    `json:"vcpu_count"`
	MemSizeMiB      int    `json:"mem_size_mib"`
	SMT             *bool  `json:"smt,omitempty"`
	TrackDirtyPages *bool  `json:"track_dirty_pages,omitempty"`
	HugePages       string `json:"huge_pages,omitempty"` // None, 2M; Transparent from 1.17
}

// BootSource is PUT /boot-source. BootArgs, when set, replaces
// Firecracker's default command line entirely.
type BootSource struct {
	KernelImagePath string `json:"kernel_image_path"`
	BootArgs        string `json:"boot_args,omitempty"`
	InitrdPath      string `json:"initrd_path,omitempty"`
}

// Drive is PUT /drives/{drive_id} for a virtio-block drive.
type Drive struct {
	DriveID      string `json:"drive_id"`
	IsRootDevice bool   `json:"is_root_device"`
	PathOnHost   string `json:"path_on_host"`
	IsReadOnly   bool   `json:"is_read_only"`
	PartUUID     string `json:"partuuid,omitempty"`
	CacheType    string `json:"cache_type,omitempty"` // Unsafe, Writeback
	IOEngine     string `json:"io_engine,omitempty"`  // Sync, Async
}

// NetworkInterface is PUT /network-interfaces/{iface_id}.
type NetworkInterface struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
	GuestMAC    string `json:"guest_mac,omitempty"`
	MTU         *int   `json:"mtu,omitempty"` // from 1.16
}

// Vsock is PUT /vsock. Firecracker binds UDSPath during the call.
type Vsock struct {
	GuestCID int    `json:"guest_cid"`
	UDSPath  string `json:"uds_path"`
}

// Logger is PUT /logger (once per process).
type Logger struct {
	LogPath       string `json:"log_path,omitempty"`
	Level         string `json:"level,omitempty"` // Error, Warning, Info, Debug, Trace, Off
	ShowLevel     *bool  `json:"show_level,omitempty"`
	ShowLogOrigin *bool  `json:"show_log_origin,omitempty"`
	Module        string `json:"module,omitempty"`
}

// Metrics is PUT /metrics (once per process).
type Metrics struct {
	MetricsPath string            `json:"metrics_path"`
	EmitID      *bool             `json:"emit_id,omitempty"`    // from 1.17
	Properties  map[string]string `json:"properties,omitempty"` // from 1.17
}

// InstanceActionInfo is PUT /actions.
type InstanceActionInfo struct {
	ActionType string `json:"action_type"`
}

// Action types.
const (
	ActionInstanceStart  = "InstanceStart"
	ActionSendCtrlAltDel = "SendCtrlAltDel"
	ActionFlushMetrics   = "FlushMetrics"
)

// APIError is a non-2xx answer; Firecracker explains it in fault_message.
type APIError struct {
	Method       string
	Path         string
	Status       int
	FaultMessage string
}

func (e *APIError) Error() string {
	msg := e.FaultMessage
	if msg == "" {
		msg = "(no fault_message)"
	}
	return fmt.Sprintf("firecracker %s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// VM is PATCH /vm: pause or resume a running microVM.
type VM struct {
	State string `json:"state"` // VMStatePaused, VMStateResumed
}

// VM states for PATCH /vm.
const (
	VMStatePaused  = "Paused"
	VMStateResumed = "Resumed"
)

// SnapshotCreateParams is PUT /snapshot/create (the microVM paused).
type SnapshotCreateParams struct {
	SnapshotType string `json:"snapshot_type,omitempty"` // Full (default), Diff
	SnapshotPath string `json:"snapshot_path"`
	MemFilePath  string `json:"mem_file_path"`
}

// MemoryBackend is where a snapshot load takes guest memory from.
type MemoryBackend struct {
	BackendType string `json:"backend_type"` // File, Uffd
	BackendPath string `json:"backend_path"`
}

// NetworkOverride points a restored NIC at another TAP.
type NetworkOverride struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
}

// VsockOverride gives a restored vsock device another uds path.
type VsockOverride struct {
	UDSPath string `json:"uds_path"`
}

// SnapshotLoadParams is PUT /snapshot/load, on a fresh process. The
// deprecated mem_file_path and enable_diff_snapshots are never sent:
// mem_backend replaces the first, and dirty-page tracking (the second's
// meaning, now track_dirty_pages) defaults to off.
type SnapshotLoadParams struct {
	SnapshotPath     string            `json:"snapshot_path"`
	MemBackend       *MemoryBackend    `json:"mem_backend,omitempty"`
	ResumeVM         *bool             `json:"resume_vm,omitempty"`
	TrackDirtyPages  *bool             `json:"track_dirty_pages,omitempty"`
	NetworkOverrides []NetworkOverride `json:"network_overrides,omitempty"` // from 1.13 (see fieldMinVersion)
	VsockOverride    *VsockOverride    `json:"vsock_override,omitempty"`    // from 1.16
	ClockRealtime    *bool             `json:"clock_realtime,omitempty"`
}
