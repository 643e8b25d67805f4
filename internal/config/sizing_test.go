package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string // substring; "" means success
	}{
		{in: "8G", want: 8 << 30},
		{in: "512M", want: 512 << 20},
		{in: "1T", want: 1 << 40},
		{in: "4K", want: 4 << 10},
		{in: "1024", want: 1024},
		{in: "8GiB", want: 8 << 30},
		{in: "8gib", want: 8 << 30},
		{in: "8GB", want: 8 << 30},
		{in: "512m", want: 512 << 20},
		{in: " 2G ", want: 2 << 30},
		{in: "4194304T", want: 1 << 62}, // the largest value accepted
		{in: "0", wantErr: "bad size"},
		{in: "0G", wantErr: "bad size"},
		{in: "-1", wantErr: "bad size"},
		{in: "-1G", wantErr: "bad size"},
		{in: "abc", wantErr: "bad size"},
		{in: "", wantErr: "bad size"},
		{in: "G", wantErr: "bad size"},
		{in: "1.5G", want: 3 << 29},
		{in: "0.5K", want: 512},
		{in: "1024B", want: 1024},
		{in: "1.5", wantErr: "not a whole number of bytes"},
		{in: "1.G", wantErr: "bad size"},
		{in: "1.2.3G", wantErr: "bad size"},
		{in: "1e3", wantErr: "bad size"},
		{in: "1/2G", wantErr: "bad size"},
		{in: "8iB", wantErr: "bad size"},
		{in: "8X", wantErr: "bad size"},
		{in: "8 G", wantErr: "bad size"},
		{in: "4194305T", wantErr: "too large"},
		{in: "9223372036854775807K", wantErr: "too large"},
		{in: "99999999999999999999", wantErr: "bad size"}, // out of int64 range
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseSize(%q) = %d, want error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "\""+tt.in+"\"") {
					t.Fatalf("ParseSize(%q) error %q: want %q and the input quoted", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMemoryMiB(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{in: "2048", want: 2048}, // plain numbers stay MiB
		{in: "2G", want: 2048},
		{in: "1.5G", want: 1536},
		{in: "1.5g", want: 1536},
		{in: "512M", want: 512},
		{in: "512MiB", want: 512},
		{in: "1T", want: 1 << 20},
		{in: "1048576K", want: 1024},
		{in: "1.3G", wantErr: "not a whole number of MiB"},
		{in: "1000K", wantErr: "not a whole number of MiB"},
		{in: "2T", wantErr: "too large"},
		{in: "lots", wantErr: "a plain number is MiB"},
		{in: "", wantErr: "bad size"},
		{in: "-2G", wantErr: "bad size"},
	}
	for _, tt := range tests {
		got, err := ParseMemoryMiB(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
				t.Errorf("ParseMemoryMiB(%q) = %d, %v; want an error with %q and the input", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMemoryMiB(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{256 << 20, "256 MiB"},
		{1 << 30, "1 GiB"},
		{8 << 30, "8 GiB"},
		{(8 << 30) + (512 << 20), "8.5 GiB"},
		{1 << 40, "1 TiB"},
		{16 << 40, "16 TiB"},
		{1 << 50, "1024 TiB"}, // TiB is the largest unit
	}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	bigHost := Host{CPUs: 16, MemoryMiB: 32 << 10}
	tests := []struct {
		name             string
		vcpu, mem        int
		disk             int64
		d                VMDefaults
		h                Host
		wantVCPU         int
		wantMem          int
		wantDisk         int64
		vFrom, mFrom, dF string
	}{
		{
			name: "flags win over config and host",
			vcpu: 2, mem: 2048, disk: 10 << 30,
			d: VMDefaults{VCPU: 8, MemoryMiB: 8192, DiskSize: "20G"}, h: bigHost,
			wantVCPU: 2, wantMem: 2048, wantDisk: 10 << 30, vFrom: "flag", mFrom: "flag", dF: "flag",
		},
		{
			name: "config wins over host heuristics",
			d:    VMDefaults{VCPU: 3, MemoryMiB: 3000, DiskSize: "20G"}, h: bigHost,
			wantVCPU: 3, wantMem: 3000, wantDisk: 20 << 30, vFrom: "config", mFrom: "config", dF: "config",
		},
		{
			name: "mixed sources",
			vcpu: 6, d: VMDefaults{MemoryMiB: 512}, h: bigHost,
			wantVCPU: 6, wantMem: 512, wantDisk: FloorDiskBytes, vFrom: "flag", mFrom: "config", dF: "builtin",
		},
		{
			name:     "auto: quarter of CPUs, eighth of RAM",
			h:        Host{CPUs: 12, MemoryMiB: 16 << 10},
			wantVCPU: 3, wantMem: 2048, wantDisk: FloorDiskBytes, vFrom: "auto", mFrom: "auto", dF: "builtin",
		},
		{
			name:     "auto clamps to the caps",
			h:        Host{CPUs: 128, MemoryMiB: 1 << 20},
			wantVCPU: MaxAutoVCPU, wantMem: MaxAutoMemory, wantDisk: FloorDiskBytes, vFrom: "auto", mFrom: "auto", dF: "builtin",
		},
		{
			name:     "auto clamps to the floors",
			h:        Host{CPUs: 2, MemoryMiB: 1024},
			wantVCPU: 1, wantMem: MinMemoryMiB, wantDisk: FloorDiskBytes, vFrom: "auto", mFrom: "auto", dF: "builtin",
		},
		{
			name:     "unknown host uses builtins",
			wantVCPU: FloorVCPU, wantMem: FloorMemoryMiB, wantDisk: FloorDiskBytes, vFrom: "builtin", mFrom: "builtin", dF: "builtin",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Resolve(tt.vcpu, tt.mem, tt.disk, tt.d, tt.h)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			want := Spec{VCPU: tt.wantVCPU, MemoryMiB: tt.wantMem, DiskBytes: tt.wantDisk, VCPUFrom: tt.vFrom, MemoryFrom: tt.mFrom, DiskFrom: tt.dF}
			if s != want {
				t.Fatalf("Resolve = %+v\nwant      %+v", s, want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name      string
		vcpu, mem int
		disk      int64
		d         VMDefaults
		wantErr   string
	}{
		{name: "memory below floor", mem: 128, wantErr: "memory 128 MiB out of range"},
		{name: "config memory below floor", d: VMDefaults{MemoryMiB: 100}, wantErr: "memory 100 MiB"},
		{name: "disk below floor", disk: 512 << 20, wantErr: "disk size 512 MiB out of range"},
		{name: "config disk below floor", d: VMDefaults{DiskSize: "100M"}, wantErr: "disk size 100 MiB"},
		{name: "bad config disk", d: VMDefaults{DiskSize: "lots"}, wantErr: "vm_defaults.disk_size"},
		{name: "negative vcpu", vcpu: -1, wantErr: "vcpu -1 out of range"},
		{name: "too many vcpus", vcpu: MaxVCPU + 1, wantErr: "vcpu 65 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(tt.vcpu, tt.mem, tt.disk, tt.d, Host{CPUs: 8, MemoryMiB: 8192})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Resolve error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{VCPU: 1, MemoryMiB: MinMemoryMiB, DiskBytes: MinDiskBytes}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal spec rejected: %v", err)
	}
	tests := []struct {
		name    string
		mut     func(*Spec)
		wantErr string
	}{
		{"vcpu 0", func(s *Spec) { s.VCPU = 0 }, "vcpu 0"},
		{"memory below floor", func(s *Spec) { s.MemoryMiB = MinMemoryMiB - 1 }, "memory 255 MiB"},
		{"memory above cap", func(s *Spec) { s.MemoryMiB = MaxMemoryMiB + 1 }, "memory 1048577 MiB out of range: want at most 1 TiB"},
		{"disk below floor", func(s *Spec) { s.DiskBytes = MinDiskBytes - 1 }, "want at least 1 GiB"},
		{"disk above cap", func(s *Spec) { s.DiskBytes = MaxDiskBytes + 1<<30 }, "out of range: want at most 16 TiB"},
	}
	for _, tt := range tests {
		s := ok
		tt.mut(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Validate = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestSpecString(t *testing.T) {
	s := Spec{VCPU: 2, MemoryMiB: 1536, DiskBytes: 8 << 30}
	if got, want := s.String(), "2 vcpu · 1.5 GiB memory · 8 GiB disk"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

func TestProbeHost(t *testing.T) {
	h := ProbeHost()
	if h.CPUs < 1 || h.MemoryMiB < 64 {
		t.Fatalf("ProbeHost = %+v: want at least one CPU and some memory", h)
	}
}
