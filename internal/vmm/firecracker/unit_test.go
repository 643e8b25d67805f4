package firecracker

import (
	"bytes"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/vmm"
)

func TestParseVersion(t *testing.T) {
	cases := map[string]Version{
		"1.16.1":               {1, 16, 1, ""},
		"v1.7.0":               {1, 7, 0, ""},
		"1.17.0-dev":           {1, 17, 0, "dev"},
		"1.16.0-dev-617-g81b3": {1, 16, 0, "dev-617-g81b3"},
	}
	for in, want := range cases {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1.16", "one.two.three", "1.-1.0"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
}

func TestVersionGating(t *testing.T) {
	v1161, v117dev := Version{1, 16, 1, ""}, Version{1, 17, 0, "dev"}
	on := true
	if err := checkFields(v1161, "/metrics", Metrics{MetricsPath: "/m", EmitID: &on}); err == nil {
		t.Error("emit_id sent to 1.16.1")
	}
	if err := checkFields(v117dev, "/metrics", Metrics{MetricsPath: "/m", EmitID: &on}); err != nil {
		t.Errorf("emit_id refused on main: %v", err)
	}
	mtu := 1400
	if err := checkFields(Version{1, 15, 0, ""}, "/network-interfaces/eth0", NetworkInterface{IfaceID: "eth0", HostDevName: "t", MTU: &mtu}); err == nil {
		t.Error("mtu sent to 1.15")
	}
	if err := checkFields(v1161, "/machine-config", MachineConfig{VCPUCount: 1, MemSizeMiB: 128, HugePages: "Transparent"}); err == nil {
		t.Error("huge_pages=Transparent sent to 1.16.1")
	}
	if err := checkFields(v1161, "/machine-config", MachineConfig{VCPUCount: 1, MemSizeMiB: 128, HugePages: "2M"}); err != nil {
		t.Errorf("huge_pages=2M refused: %v", err)
	}
	if !v117dev.AtLeast(Version{1, 17, 0, ""}) || v1161.AtLeast(Version{1, 17, 0, ""}) {
		t.Error("AtLeast is wrong")
	}
}

func TestBootArgs(t *testing.T) {
	got := BootArgs("  quiet   banger.vm=dev ")
	want := BaseBootArgs + " quiet banger.vm=dev"
	if got != want {
		t.Fatalf("BootArgs = %q, want %q", got, want)
	}
	for _, must := range []string{"console=ttyS0", "reboot=k", "panic=1", "pci=off"} {
		if !strings.Contains(BootArgs(""), must) {
			t.Errorf("base line lacks %s", must)
		}
	}
	for _, never := range []string{"root=", "nomodule", "8250.nr_uarts=0"} {
		if strings.Contains(BootArgs(""), never) {
			t.Errorf("base line has %s", never)
		}
	}
}

func TestInstanceID(t *testing.T) {
	cases := map[string]vmm.Spec{
		vmm.Marker("0123456789ab"):          {ID: "0123456789ab", Name: "dev"}, // found by its argv
		"banger-vm-01":                      {ID: "vm-01"},
		"banger-my-vm-x":                    {ID: "my_vm.x"},
		"dev":                               {Name: "dev"},
		"banger":                            {ID: "__"},
		"banger-" + strings.Repeat("a", 57): {ID: strings.Repeat("a", 80)},
	}
	for want, spec := range cases {
		if got := instanceID(spec); got != want {
			t.Errorf("instanceID(%+v) = %q, want %q", spec, got, want)
		}
	}
}

func TestJailerArgs(t *testing.T) {
	j := &JailerOptions{UID: 1234, GID: 1235, CgroupVersion: 2, NetNS: "/var/run/netns/vm1"}
	got := jailerArgs("/usr/bin/jailer", j, "/usr/bin/firecracker", "vm-1", []string{"--api-sock", "/run/fc.sock"})
	want := []string{"/usr/bin/jailer", "--id", "vm-1", "--exec-file", "/usr/bin/firecracker",
		"--uid", "1234", "--gid", "1235", "--chroot-base-dir", "/srv/jailer",
		"--cgroup-version", "2", "--netns", "/var/run/netns/vm1", "--", "--api-sock", "/run/fc.sock"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("argv:\n%q\nwant\n%q", got, want)
	}
	minimal := jailerArgs("jailer", &JailerOptions{UID: 1, GID: 1, ChrootBase: "/j"}, "/opt/fc/firecracker-v1.16", "x", nil)
	if strings.Contains(strings.Join(minimal, " "), "cgroup") || minimal[len(minimal)-1] != "--" {
		t.Fatalf("minimal argv %q", minimal)
	}
	l := newJailLayout(&JailerOptions{ChrootBase: "/j"}, "/opt/fc/firecracker-v1.16", "vm-1")
	if l.Root != "/j/firecracker-v1.16/vm-1/root" || l.host("/run/fc.sock") != "/j/firecracker-v1.16/vm-1/root/run/fc.sock" {
		t.Fatalf("layout %+v", l)
	}
}

func TestJailSpecAndLeftovers(t *testing.T) {
	spec := vmm.Spec{Kernel: "/img/bz", KernelELF: "/img/vmlinux", Initrd: "/img/initrd",
		Disks: []vmm.Disk{{ID: "base", Path: "/img/base.ext4", ReadOnly: true}, {ID: "work", Path: "/vm/work.ext4"}}}
	j := jailSpec(spec)
	if j.KernelELF != "/kernel" || j.Kernel != "" || j.Initrd != "/initrd" ||
		j.Disks[0].Path != "/drives/base" || j.Disks[1].Path != "/drives/work" || !j.Disks[0].ReadOnly {
		t.Fatalf("jailSpec = %+v", j)
	}
	if spec.Disks[0].Path != "/img/base.ext4" {
		t.Fatal("jailSpec changed its input")
	}
	d := New(Options{Jailer: &JailerOptions{ChrootBase: "/j"}})
	h := vmm.Handles{ControlSock: "/j/firecracker/vm-1/root/run/fc.sock", AgentSock: "/j/firecracker/vm-1/root/run/vsock.sock"}
	if got := d.leftoversFor(h); !reflect.DeepEqual(got, []string{"/j/firecracker/vm-1"}) {
		t.Fatalf("jailed leftovers %q", got)
	}
	plain := vmm.Handles{ControlSock: "/r/fc.sock", AgentSock: "/r/vsock.sock"}
	if got := New(Options{}).leftoversFor(plain); !reflect.DeepEqual(got, []string{"/r/fc.sock", "/r/vsock.sock"}) {
		t.Fatalf("leftovers %q", got)
	}
}

// TestAckDoesNotSwallowGuestBytes: the agent may speak right after OK.
func TestAckDoesNotSwallowGuestBytes(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	go func() {
		buf := make([]byte, 64)
		guest.Read(buf) // CONNECT line
		guest.Write([]byte("OK 1073741824\nBANGER-READY x\n"))
		guest.Close()
	}()
	if err := vsockHandshake(host, 1024); err != nil {
		t.Fatal(err)
	}
	rest := new(bytes.Buffer)
	rest.ReadFrom(host)
	if rest.String() != "BANGER-READY x\n" {
		t.Fatalf("after ack: %q", rest)
	}
}

func TestAckRejectsOther(t *testing.T) {
	for reply, want := range map[string]string{"": "no guest listener", "NO\n": "unexpected answer"} {
		host, guest := net.Pipe()
		go func() {
			guest.Read(make([]byte, 64))
			guest.Write([]byte(reply))
			guest.Close()
		}()
		if err := vsockHandshake(host, 1024); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reply %q: got %v, want %q", reply, err, want)
		}
		host.Close()
	}
}
