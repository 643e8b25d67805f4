package agent

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestReadStatsFromProc(t *testing.T) {
	proc := t.TempDir()
	write := func(name, body string) {
		os.MkdirAll(filepath.Dir(filepath.Join(proc, name)), 0o755)
		os.WriteFile(filepath.Join(proc, name), []byte(body), 0o644)
	}
	write("uptime", "123.45 200.00\n")
	write("loadavg", "0.50 0.40 0.30 1/100 999\n")
	write("stat", "cpu  100 5 50 800 20 3 2 1 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\ncpu1 50 3 25 400 10 2 1 1 0 0\nintr 1\n")
	write("meminfo", "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     600 kB\n")
	s, err := readStats(proc, t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.UptimeSeconds != 123.45 || s.Load1 != 0.5 || s.CPUs != 2 {
		t.Errorf("uptime/load/cpus: %+v", s)
	}
	if s.CPUBusyTicks != 100+5+50+3+2+1 || s.CPUTotalTicks != s.CPUBusyTicks+800+20 {
		t.Errorf("cpu ticks: busy %d total %d", s.CPUBusyTicks, s.CPUTotalTicks)
	}
	if s.MemTotalBytes != 1000<<10 || s.MemAvailBytes != 600<<10 {
		t.Errorf("memory: %+v", s)
	}
	if s.WorkDiskBytes == 0 || s.WorkDiskUsed > s.WorkDiskBytes {
		t.Errorf("work disk: %d used of %d", s.WorkDiskUsed, s.WorkDiskBytes)
	}
}

func TestDecodeAddr(t *testing.T) {
	for _, c := range []struct {
		in, addr string
		port     int
	}{
		{"0100007F:0016", "127.0.0.1", 22},
		{"00000000:1F90", "0.0.0.0", 8080},
		{"00000000000000000000000001000000:0035", "::1", 53},
	} {
		a, p, err := decodeAddr(c.in)
		if err != nil || a != c.addr || p != c.port {
			t.Errorf("decodeAddr(%s) = %s %d %v, want %s %d", c.in, a, p, err, c.addr, c.port)
		}
	}
	if _, _, err := decodeAddr("zz:1"); err == nil {
		t.Error("bad hex accepted")
	}
}

// The real /proc of the test process: a listener we open must be listed
// with our PID.
func TestListeningPortsFindsOwnListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ports, err := listeningPorts("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p.Port == port && p.Proto == "tcp" && p.Address == "127.0.0.1" {
			if p.PID != os.Getpid() {
				t.Errorf("owner pid %d, want %d", p.PID, os.Getpid())
			}
			return
		}
	}
	t.Fatalf("listener on %d not found in %v", port, ports)
}
