package fakefc

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	apiID  = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	macRe  = regexp.MustCompile(`^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$`)
	levels = []string{"error", "warning", "info", "debug", "trace", "off"}
)

func required(name string, present bool) error {
	if !present {
		return faultf("An error occurred when deserializing the json body of a request: missing field `%s`.", name)
	}
	return nil
}

func oneOf(field string, v *string, allowed ...string) error {
	if v != nil && !slices.Contains(allowed, *v) {
		return faultf("An error occurred when deserializing the json body of a request: unknown variant `%s` for %s, expected one of %v.", *v, field, allowed)
	}
	return nil
}

// mustOpen mirrors Firecracker opening host files during the PUT.
func mustOpen(what, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return faultf("%s: cannot open %s: %v", what, path, err)
	}
	return f.Close()
}

func (s *server) putMachine(body []byte) error {
	var m machineConfig
	if err := decode(body, &m); err != nil {
		return err
	}
	if err := required("vcpu_count", m.VCPUCount != nil); err != nil {
		return err
	}
	if err := required("mem_size_mib", m.MemSizeMiB != nil); err != nil {
		return err
	}
	if n := *m.VCPUCount; n < 1 || n > 32 || (m.SMT != nil && *m.SMT && n > 1 && n%2 == 1) {
		return faultf("The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.")
	}
	if *m.MemSizeMiB < 1 {
		return faultf("The memory size (MiB) is invalid.")
	}
	hp := []string{"None", "2M"}
	if s.ver.atLeast(1, 17) {
		hp = append(hp, "Transparent")
	}
	if err := oneOf("huge_pages", m.HugePages, hp...); err != nil {
		return err
	}
	s.machine, s.machineSet = m, true
	return nil
}

func (s *server) putBoot(body []byte) error {
	var b bootSource
	if err := decode(body, &b); err != nil {
		return err
	}
	if err := required("kernel_image_path", b.KernelImagePath != nil); err != nil {
		return err
	}
	if err := mustOpen("The kernel file cannot be opened", *b.KernelImagePath); err != nil {
		return err
	}
	if b.InitrdPath != nil {
		if err := mustOpen("The initrd file cannot be opened", *b.InitrdPath); err != nil {
			return err
		}
	}
	s.boot = &b
	return nil
}

func checkPathID(kind, pathID string, bodyID *string) error {
	if !apiID.MatchString(pathID) {
		return faultf("Invalid ID. ID must contain only alphanumeric characters and underscores: %q.", pathID)
	}
	if err := required(kind, bodyID != nil); err != nil {
		return err
	}
	if *bodyID != pathID {
		return faultf("The id from the path [%s] does not match the id from the body [%s]!", pathID, *bodyID)
	}
	return nil
}

func (s *server) putDrive(id string, body []byte) error {
	var d drive
	if err := decode(body, &d); err != nil {
		return err
	}
	if err := checkPathID("drive_id", id, d.DriveID); err != nil {
		return err
	}
	if err := required("is_root_device", d.IsRootDevice != nil); err != nil {
		return err
	}
	if d.Socket != nil {
		return faultf("fake-firecracker: vhost-user drives are not emulated")
	}
	if d.PathOnHost == nil || d.IsReadOnly == nil {
		return faultf("Unable to create the block device: path_on_host and is_read_only are required for virtio-block.")
	}
	if err := oneOf("cache_type", d.CacheType, "Unsafe", "Writeback"); err != nil {
		return err
	}
	if err := oneOf("io_engine", d.IOEngine, "Sync", "Async"); err != nil {
		return err
	}
	if err := mustOpen("Unable to create the block device", *d.PathOnHost); err != nil {
		return err
	}
	i := slices.IndexFunc(s.drives, func(x drive) bool { return *x.DriveID == id })
	if *d.IsRootDevice && slices.ContainsFunc(s.drives, func(x drive) bool { return *x.IsRootDevice && *x.DriveID != id }) {
		return faultf("A root block device already exists!")
	}
	if i >= 0 {
		s.drives[i] = d
	} else {
		s.drives = append(s.drives, d)
	}
	return nil
}

func (s *server) putIface(id string, body []byte) error {
	var n networkInterface
	if err := decode(body, &n); err != nil {
		return err
	}
	if err := checkPathID("iface_id", id, n.IfaceID); err != nil {
		return err
	}
	if n.MTU != nil && !s.ver.atLeast(1, 16) {
		return faultf("An error occurred when deserializing the json body of a request: unknown field `mtu`.")
	}
	if err := required("host_dev_name", n.HostDevName != nil); err != nil {
		return err
	}
	if l := len(*n.HostDevName); l == 0 || l > 15 {
		return faultf("Could not create the network device: Open tap device failed: invalid name %q.", *n.HostDevName)
	}
	if n.GuestMAC != nil && !macRe.MatchString(*n.GuestMAC) {
		return faultf("An error occurred when deserializing the json body of a request: invalid MAC address %q.", *n.GuestMAC)
	}
	s.ifaces[id] = n
	return nil
}

func (s *server) putVsock(body []byte) error {
	var v vsockConfig
	if err := decode(body, &v); err != nil {
		return err
	}
	if err := required("guest_cid", v.GuestCID != nil); err != nil {
		return err
	}
	if err := required("uds_path", v.UDSPath != nil); err != nil {
		return err
	}
	if *v.GuestCID < 3 {
		return faultf("Cannot create backend for vsock device: invalid guest CID %d.", *v.GuestCID)
	}
	dev, err := listenVsock(s, *v.UDSPath)
	if err != nil {
		return faultf("Cannot create backend for vsock device: %v", err)
	}
	if s.vsock != nil {
		s.vsock.close()
	}
	s.vsock = dev
	return nil
}

func (s *server) putLogger(body []byte) error {
	var l loggerConfig
	if err := decode(body, &l); err != nil {
		return err
	}
	if s.logger != nil {
		return faultf("Reinitialization of logger not allowed.")
	}
	if l.Level != nil && !slices.Contains(levels, strings.ToLower(*l.Level)) {
		return faultf("Invalid log level: %s", *l.Level)
	}
	if l.LogPath == nil {
		return nil
	}
	f, err := os.OpenFile(*l.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return faultf("Failed to open log file: %v", err)
	}
	s.logger = f
	return nil
}

func (s *server) putMetrics(body []byte) error {
	var m metricsConfig
	if err := decode(body, &m); err != nil {
		return err
	}
	if (m.EmitID != nil || m.Properties != nil) && !s.ver.atLeast(1, 17) {
		return faultf("An error occurred when deserializing the json body of a request: unknown field `emit_id` or `properties`.")
	}
	if s.metrics {
		return faultf("Reinitialization of metrics not allowed.")
	}
	if err := required("metrics_path", m.MetricsPath != nil); err != nil {
		return err
	}
	f, err := os.OpenFile(*m.MetricsPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return faultf("Failed to open metrics file: %v", err)
	}
	f.Close()
	s.metrics = true
	return nil
}

func (s *server) action(body []byte) error {
	var a action
	if err := decode(body, &a); err != nil {
		return err
	}
	if err := required("action_type", a.ActionType != nil); err != nil {
		return err
	}
	switch *a.ActionType {
	case "InstanceStart":
		return s.instanceStart()
	case "SendCtrlAltDel", "FlushMetrics":
		if !s.started {
			return faultf("The requested operation is not supported before starting the microVM.")
		}
		if *a.ActionType == "SendCtrlAltDel" && !s.cfg.ignoreCAD {
			go s.exitAfter(s.cfg.cadExitDelay)
		}
		return nil
	}
	return faultf("An error occurred when deserializing the json body of a request: unknown variant `%s`.", *a.ActionType)
}

func (s *server) instanceStart() error {
	if s.started {
		return faultf("The requested operation is not supported after starting the microVM.")
	}
	if s.boot == nil {
		return faultf("Cannot start microvm without kernel configuration.")
	}
	if err := s.checkKernel(*s.boot.KernelImagePath); err != nil {
		return err
	}
	s.started = true
	fmt.Fprintf(s.stdout, "[    0.000000] Linux version 6.1.0-fake (fake-firecracker %s)\n", s.cfg.version)
	fmt.Fprintf(s.stdout, "[    0.000000] Command line: %s\n", s.cmdline())
	if s.vsock != nil {
		s.vsock.boot(s.cfg)
	}
	return nil
}

// checkKernel refuses what the emulated version cannot load: an ELF
// vmlinux always, a bzImage only from 1.17 (main).
func (s *server) checkKernel(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return faultf("Cannot load kernel: %v", err)
	}
	if bytes.HasPrefix(b, []byte("\x7fELF")) {
		return nil
	}
	if s.ver.atLeast(1, 17) && len(b) > 0x206 && string(b[0x202:0x206]) == "HdrS" {
		return nil
	}
	return faultf("Cannot load kernel due to invalid memory configuration or invalid kernel image: Kernel Loader: failed to load ELF kernel image")
}

// cmdline is what the guest kernel would see: boot_args, or the default
// line, plus what Firecracker appends itself.
func (s *server) cmdline() string {
	line := "reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce"
	if s.boot.BootArgs != nil {
		line = *s.boot.BootArgs
	}
	if s.ver.atLeast(1, 13) {
		line += " pci=off"
	}
	for _, d := range s.drives {
		if *d.IsRootDevice {
			mode := "rw"
			if *d.IsReadOnly {
				mode = "ro"
			}
			line += " root=/dev/vda " + mode
		}
	}
	return line
}

// exitAfter emulates the guest resetting after Ctrl-Alt-Del with
// reboot=k: Firecracker exits 0. The delay lets the 204 go out first.
func (s *server) exitAfter(d time.Duration) {
	time.Sleep(d)
	os.Exit(exitOK)
}
