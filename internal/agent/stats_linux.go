package agent

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func init() {
	ops[proto.OpStats] = func(s *Server, st net.Conn, req proto.Request) {
		stats, err := readStats("/proc", "/root", "/")
		replyData(st, stats, err)
	}
}

// replyData answers a request-response op.
func replyData(st net.Conn, v any, err error) {
	if err != nil {
		proto.WriteLine(st, proto.Response{Error: err.Error()})
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		proto.WriteLine(st, proto.Response{Error: err.Error()})
		return
	}
	proto.WriteLine(st, proto.Response{OK: true, Data: b})
}

// readStats reads /proc and statfs; the paths are parameters for tests.
func readStats(procDir, workDir, rootDir string) (proto.Stats, error) {
	var s proto.Stats
	if b, err := os.ReadFile(procDir + "/uptime"); err == nil {
		fmt.Sscanf(string(b), "%f", &s.UptimeSeconds)
	}
	if b, err := os.ReadFile(procDir + "/loadavg"); err == nil {
		fmt.Sscanf(string(b), "%f", &s.Load1)
	}
	if err := readCPU(procDir+"/stat", &s); err != nil {
		return s, err
	}
	if err := readMem(procDir+"/meminfo", &s); err != nil {
		return s, err
	}
	s.WorkDiskBytes, s.WorkDiskUsed = fsUsage(workDir)
	s.RootDiskBytes, s.RootDiskUsed = fsUsage(rootDir)
	return s, nil
}

func readCPU(path string, s *proto.Stats) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read cpu stats: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch {
		case fields[0] == "cpu" && len(fields) >= 9:
			var v [8]uint64
			for i := range v {
				v[i], _ = strconv.ParseUint(fields[i+1], 10, 64)
			}
			// user nice system idle iowait irq softirq steal
			s.CPUBusyTicks = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
			s.CPUTotalTicks = s.CPUBusyTicks + v[3] + v[4]
		case strings.HasPrefix(fields[0], "cpu"):
			s.CPUs++
		}
	}
	return sc.Err()
}

func readMem(path string, s *proto.Stats) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read memory stats: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var key string
		var kb uint64
		if n, _ := fmt.Sscanf(sc.Text(), "%s %d", &key, &kb); n != 2 {
			continue
		}
		switch key {
		case "MemTotal:":
			s.MemTotalBytes = kb << 10
		case "MemAvailable:":
			s.MemAvailBytes = kb << 10
		}
	}
	return sc.Err()
}

func fsUsage(path string) (total, used uint64) {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return 0, 0
	}
	total = st.Blocks * uint64(st.Bsize)
	return total, total - st.Bfree*uint64(st.Bsize)
}
