package fakefc

// Request bodies as the fake accepts them, written from the OpenAPI spec
// independently of the driver's types so that the driver's tests exercise
// a second reading of the spec. Required fields are pointers, so that a
// missing one can be told from a zero value.

type machineConfig struct {
	VCPUCount       *int    `json:"vcpu_count"`
	MemSizeMiB      *int    `json:"mem_size_mib"`
	SMT             *bool   `json:"smt"`
	TrackDirtyPages *bool   `json:"track_dirty_pages"`
	HugePages       *string `json:"huge_pages"`
	CPUTemplate     *string `json:"cpu_template"`
}

type bootSource struct {
	KernelImagePath *string `json:"kernel_image_path"`
	BootArgs        *string `json:"boot_args"`
	InitrdPath      *string `json:"initrd_path"`
}

type tokenBucket struct {
	Size         *int64 `json:"size"`
	OneTimeBurst *int64 `json:"one_time_burst"`
	RefillTime   *int64 `json:"refill_time"`
}

type rateLimiter struct {
	Bandwidth *tokenBucket `json:"bandwidth"`
	Ops       *tokenBucket `json:"ops"`
}

type drive struct {
	DriveID      *string      `json:"drive_id"`
	IsRootDevice *bool        `json:"is_root_device"`
	PathOnHost   *string      `json:"path_on_host"`
	IsReadOnly   *bool        `json:"is_read_only"`
	PartUUID     *string      `json:"partuuid"`
	CacheType    *string      `json:"cache_type"`
	IOEngine     *string      `json:"io_engine"`
	RateLimiter  *rateLimiter `json:"rate_limiter"`
	Socket       *string      `json:"socket"`
}

type networkInterface struct {
	IfaceID       *string      `json:"iface_id"`
	HostDevName   *string      `json:"host_dev_name"`
	GuestMAC      *string      `json:"guest_mac"`
	MTU           *int         `json:"mtu"`
	RxRateLimiter *rateLimiter `json:"rx_rate_limiter"`
	TxRateLimiter *rateLimiter `json:"tx_rate_limiter"`
}

type vsockConfig struct {
	GuestCID *int    `json:"guest_cid"`
	UDSPath  *string `json:"uds_path"`
	VsockID  *string `json:"vsock_id"`
}

type loggerConfig struct {
	LogPath       *string `json:"log_path"`
	Level         *string `json:"level"`
	ShowLevel     *bool   `json:"show_level"`
	ShowLogOrigin *bool   `json:"show_log_origin"`
	Module        *string `json:"module"`
}

type metricsConfig struct {
	MetricsPath *string           `json:"metrics_path"`
	EmitID      *bool             `json:"emit_id"`
	Properties  map[string]string `json:"properties"`
}

type action struct {
	ActionType *string `json:"action_type"`
}
