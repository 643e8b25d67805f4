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
