package dns

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PortHolder names the process that has a socket bound to port ("pid
// 1234 (dnsmasq)"), from /proc of the calling thread's network namespace.
// It returns "" when nothing is found; other users' processes are visible
// only to root.
func PortHolder(proto string, port int) string {
	inodes := map[string]bool{}
	for _, f := range []string{proto, proto + "6"} {
		file, err := os.Open("/proc/thread-self/net/" + f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 {
				continue
			}
			_, hexPort, ok := strings.Cut(fl[1], ":")
			p, err := strconv.ParseUint(hexPort, 16, 16)
			if !ok || err != nil || int(p) != port {
				continue
			}
			if proto == "tcp" && fl[3] != "0A" { // LISTEN
				continue
			}
			inodes["socket:["+fl[9]+"]"] = true
		}
		file.Close()
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		target, err := os.Readlink(fd)
		if err != nil || !inodes[target] {
			continue
		}
		pid := strings.Split(fd, "/")[2]
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		return fmt.Sprintf("pid %s (%s)", pid, strings.TrimSpace(string(comm)))
	}
	return "a process banger cannot see (run `sudo ss -lunp` to find it)"
}
