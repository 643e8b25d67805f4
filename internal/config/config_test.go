package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadMissingFileIsDefaults(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "nope", "config.toml"))
	if err != nil {
		t.Fatalf("Load missing file: %v", err)
	}
	want := Config{
		VMM: "auto", QEMUAccel: "auto",
		DefaultImage: DefaultImageName, DefaultKernel: DefaultKernelName,
		BootTimeout: Duration{DefaultBoot}, BootStallTimeout: Duration{DefaultBootStall}, StatsPollInterval: Duration{DefaultStatsPoll},
		Network: Network{Bridge: DefaultBridge, Subnet: DefaultSubnet, DNSPort: DefaultDNSPort},
	}
	if c != want {
		t.Fatalf("Load = %+v\nwant   %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestLoadFullFile(t *testing.T) {
	p := writeConfig(t, `
vmm = "qemu"
default_image = "img"
default_kernel = "krn"
qemu_bin = "/opt/qemu"
qemu_accel = "tcg"
agent_bin = "/opt/agent"
boot_timeout = "90s"
boot_stall_timeout = "45s"

[vm_defaults]
vcpu = 2
memory = 2048
disk_size = "16G"

[network]
bridge = "br-test"
subnet = "10.88.0.0/16"
`)
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		VMM: "qemu", DefaultImage: "img", DefaultKernel: "krn", QEMUBin: "/opt/qemu", QEMUAccel: "tcg",
		AgentBin: "/opt/agent", BootTimeout: Duration{90 * time.Second}, BootStallTimeout: Duration{45 * time.Second}, StatsPollInterval: Duration{DefaultStatsPoll},
		VMDefaults: VMDefaults{VCPU: 2, MemoryMiB: 2048, DiskSize: "16G"},
		Network:    Network{Bridge: "br-test", Subnet: "10.88.0.0/16", DNSPort: DefaultDNSPort},
	}
	if c != want {
		t.Fatalf("Load = %+v\nwant   %+v", c, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr []string
	}{
		{"unknown top-level key", `vmm_typo = "qemu"`, []string{"unknown key", "vmm_typo"}},
		{"unknown nested key", "[network]\nmtu = 1400", []string{"unknown key", "network.mtu"}},
		{"unknown table", "[nat]\nenabled = true", []string{"unknown key", "nat"}},
		{"bad vmm", `vmm = "xen"`, []string{`vmm = "xen"`, "auto, qemu or firecracker"}},
		{"bad accel", `qemu_accel = "hvf"`, []string{`qemu_accel = "hvf"`}},
		{"subnet not a prefix", "[network]\nsubnet = \"10.0.0.1\"", []string{`network.subnet = "10.0.0.1"`}},
		{"subnet garbage", "[network]\nsubnet = \"lan\"", []string{"network.subnet", "/16 and /29"}},
		{"subnet too large", "[network]\nsubnet = \"10.0.0.0/8\"", []string{`"10.0.0.0/8"`}},
		{"subnet too small", "[network]\nsubnet = \"10.0.0.0/30\"", []string{`"10.0.0.0/30"`}},
		{"subnet ipv6", "[network]\nsubnet = \"fd00::/64\"", []string{`"fd00::/64"`}},
		{"bridge name too long", "[network]\nbridge = \"a-very-long-bridge0\"", []string{"network.bridge", "not a valid interface name"}},
		{"bridge name with slash", "[network]\nbridge = \"br/0\"", []string{"network.bridge"}},
		{"negative vcpu", "[vm_defaults]\nvcpu = -1", []string{"vm_defaults"}},
		{"bad disk size", "[vm_defaults]\ndisk_size = \"big\"", []string{"vm_defaults.disk_size", `"big"`}},
		{"bad memory size", "[vm_defaults]\nmemory = \"lots\"", []string{"memory", `"lots"`, "a plain number is MiB"}},
		{"fractional memory MiB", "[vm_defaults]\nmemory = \"1.3G\"", []string{"not a whole number of MiB"}},
		{"float memory", "[vm_defaults]\nmemory = 1.5", []string{"memory = 1.5", `"1.5G"`}},
		{"negative memory", "[vm_defaults]\nmemory = -1", []string{"memory = -1"}},
		{"bad duration", `boot_timeout = "soon"`, []string{"boot_timeout"}},
		{"stall longer than boot", "boot_timeout = \"30s\"\nboot_stall_timeout = \"60s\"", []string{"boot_stall_timeout = 1m0s", "at most boot_timeout (30s)"}},
		{"stall too short", `boot_stall_timeout = "10ms"`, []string{"boot_stall_timeout = 10ms"}},
		{"wrong type", `vmm = 3`, []string{"vmm"}},
		{"not toml", `vmm = `, []string{"line 1", "vmm"}},
		{"vcpu over the cap", "[vm_defaults]\nvcpu = 65", []string{"vm_defaults.vcpu = 65", "at most 64"}},
		{"memory under the floor", "[vm_defaults]\nmemory = 100", []string{"vm_defaults.memory = 100"}},
		{"disk under the floor", "[vm_defaults]\ndisk_size = \"1M\"", []string{"vm_defaults.disk_size: 1M"}},
		{"warm not a bool", "[snapshots]\nwarm = \"yes\"", []string{"warm"}},
		{"unknown snapshots key", "[snapshots]\ncold = true", []string{"unknown key", "snapshots.cold"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.body)
			_, err := Load(p)
			if err == nil {
				t.Fatalf("Load accepted %q", tt.body)
			}
			for _, w := range append(tt.wantErr, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadMemorySizes(t *testing.T) {
	for body, want := range map[string]MemMiB{`memory = 2048`: 2048, `memory = "2G"`: 2048, `memory = "1.5G"`: 1536, `memory = "512M"`: 512} {
		c, err := Load(writeConfig(t, "[vm_defaults]\n"+body))
		if err != nil || c.VMDefaults.MemoryMiB != want {
			t.Errorf("%s: memory %d, %v; want %d", body, c.VMDefaults.MemoryMiB, err, want)
		}
	}
}

func TestLoadAcceptsSubnetBounds(t *testing.T) {
	for _, s := range []string{"10.0.0.0/16", "192.168.7.0/24", "10.1.2.8/29"} {
		if _, err := Load(writeConfig(t, "[network]\nsubnet = \""+s+"\"")); err != nil {
			t.Errorf("subnet %s rejected: %v", s, err)
		}
	}
}

func TestEnsureRuntimeDir(t *testing.T) {
	base := t.TempDir()
	p := Paths{RuntimeDir: filepath.Join(base, "parent", "banger")}
	if err := p.EnsureRuntimeDir(); err != nil {
		t.Fatalf("EnsureRuntimeDir: %v", err)
	}
	fi, err := os.Lstat(p.RuntimeDir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("runtime dir mode %v, want drwx------", fi.Mode())
	}
	// Idempotent.
	if err := p.EnsureRuntimeDir(); err != nil {
		t.Fatalf("second EnsureRuntimeDir: %v", err)
	}
}

func TestEnsureRuntimeDirRefusesUnsafe(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		wantErr string
	}{
		{"symlink to a private dir", func(t *testing.T, dir string) {
			target := dir + ".target"
			must(t, os.Mkdir(target, 0o700))
			must(t, os.Symlink(target, dir))
		}, "symlinks are refused"},
		{"mode 0755", func(t *testing.T, dir string) {
			must(t, os.Mkdir(dir, 0o700))
			must(t, os.Chmod(dir, 0o755))
		}, "has mode 755"},
		{"mode 0711", func(t *testing.T, dir string) {
			must(t, os.Mkdir(dir, 0o700))
			must(t, os.Chmod(dir, 0o711))
		}, "has mode 711"},
		{"regular file", func(t *testing.T, dir string) {
			must(t, os.WriteFile(dir, nil, 0o700))
		}, "not a directory"},
		{"owned by another user", func(t *testing.T, dir string) {
			must(t, os.Mkdir(dir, 0o700))
			must(t, os.Chown(dir, os.Getuid()+4242, -1)) // the suite runs as root
		}, "owned by uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rt")
			tt.prepare(t, dir)
			err := Paths{RuntimeDir: dir}.EnsureRuntimeDir()
			if !errors.Is(err, ErrUnsafeRuntimeDir) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("EnsureRuntimeDir = %v, want ErrUnsafeRuntimeDir containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultPaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "/xdg/config")
	t.Setenv("XDG_STATE_HOME", "relative/state") // not absolute: ignored
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/77")
	p, err := DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	want := Paths{
		ConfigDir:  "/xdg/config/banger",
		StateDir:   filepath.Join(home, ".local", "state", "banger"),
		CacheDir:   filepath.Join(home, ".cache", "banger"),
		RuntimeDir: "/run/user/77/banger",
	}
	if p != want {
		t.Fatalf("DefaultPaths = %+v\nwant           %+v", p, want)
	}
	if p.Socket() != "/run/user/77/banger/bangerd.sock" || p.ConfigFile() != "/xdg/config/banger/config.toml" {
		t.Fatalf("Socket/ConfigFile = %s, %s", p.Socket(), p.ConfigFile())
	}

	t.Setenv("XDG_RUNTIME_DIR", "")
	p, err = DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/tmp/banger-runtime-" + strconv.Itoa(os.Getuid()); p.RuntimeDir != want {
		t.Fatalf("RuntimeDir without XDG_RUNTIME_DIR = %s, want %s", p.RuntimeDir, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoadSnapshotsWarm(t *testing.T) {
	for body, want := range map[string]bool{"": true, "[snapshots]\nwarm = true": true, "[snapshots]\nwarm = false": false} {
		c, err := Load(writeConfig(t, body))
		if err != nil {
			t.Fatal(err)
		}
		if c.WarmStarts() != want {
			t.Errorf("%q: WarmStarts() = %v", body, c.WarmStarts())
		}
	}
}
