package proto

// Ops for guest statistics and listening ports.
const (
	OpStats = "stats"
	OpPorts = "ports"
)

// Stats is a snapshot of the guest's resource use. CPU times are
// cumulative; the host derives utilisation from two snapshots.
type Stats struct {
	UptimeSeconds float64 `json:"uptime_seconds"`
	CPUs          int     `json:"cpus"`
	CPUBusyTicks  uint64  `json:"cpu_busy_ticks"`  // user+nice+system+irq+softirq+steal
	CPUTotalTicks uint64  `json:"cpu_total_ticks"` // busy + idle + iowait
	MemTotalBytes uint64  `json:"mem_total_bytes"`
	MemAvailBytes uint64  `json:"mem_available_bytes"`
	WorkDiskBytes uint64  `json:"work_disk_bytes"` // size of the filesystem at /root
	WorkDiskUsed  uint64  `json:"work_disk_used_bytes"`
	RootDiskBytes uint64  `json:"root_disk_bytes"` // the overlay's upper disk, as seen at /
	RootDiskUsed  uint64  `json:"root_disk_used_bytes"`
	Load1         float64 `json:"load1"`
}

// Port is one listening socket in the guest.
type Port struct {
	Proto   string `json:"proto"` // tcp, tcp6, udp, udp6
	Address string `json:"address"`
	Port    int    `json:"port"`
	PID     int    `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
}
