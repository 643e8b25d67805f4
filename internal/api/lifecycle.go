package api

import "time"

// Lifecycle methods beyond create/start/stop/delete.
const (
	MethodVMRestart = "vm.restart"
	MethodVMSet     = "vm.set"
	MethodVMStats   = "vm.stats"
	MethodVMPorts   = "vm.ports"
	MethodVMExec    = "vm.exec" // an exec stream in a running VM, through its agent
)

// SetParams resizes a stopped VM; zero fields are left as they are.
type SetParams struct {
	Name      string `json:"name"`
	VCPU      int    `json:"vcpu,omitempty"`
	MemoryMiB int    `json:"memory_mib,omitempty"`
	DiskSize  string `json:"disk_size,omitempty"`
}

// VMStats is the guest's resource use as last polled by the daemon.
type VMStats struct {
	Name          string    `json:"name"`
	SampledAt     time.Time `json:"sampled_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	CPUs          int       `json:"cpus"`
	CPUPercent    float64   `json:"cpu_percent"` // of all vCPUs, since the previous sample
	Load1         float64   `json:"load1"`
	MemTotalBytes uint64    `json:"mem_total_bytes"`
	MemUsedBytes  uint64    `json:"mem_used_bytes"`
	WorkDiskBytes uint64    `json:"work_disk_bytes"`
	WorkDiskUsed  uint64    `json:"work_disk_used_bytes"`
	RootDiskBytes uint64    `json:"root_disk_bytes"`
	RootDiskUsed  uint64    `json:"root_disk_used_bytes"`
}

// Port is a listening socket in the guest.
type Port struct {
	Proto   string `json:"proto"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	PID     int    `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
}

// ExecParams runs a command in a running VM through its guest agent (no
// sshd needed). Env and Dir come on top of the image's runtime config,
// as for vm.run.
type ExecParams struct {
	Name string `json:"name"`
	// ExecRequest is the command; User defaults to the image's, else
	// root; TTY runs it on a pseudo-terminal of that size (vm exec -t).
	ExecRequest
}
