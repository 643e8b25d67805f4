package agent

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func init() {
	ops[proto.OpPorts] = func(s *Server, st net.Conn, req proto.Request) {
		ports, err := listeningPorts("/proc")
		replyData(st, ports, err)
	}
}

// listeningPorts lists TCP sockets in LISTEN and unconnected UDP sockets,
// with the process owning each (found through /proc/PID/fd inodes).
func listeningPorts(procDir string) ([]proto.Port, error) {
	owners := socketOwners(procDir)
	var out []proto.Port
	for _, f := range []struct {
		file, proto, state string
	}{
		{"tcp", "tcp", "0A"}, {"tcp6", "tcp6", "0A"}, {"udp", "udp", "07"}, {"udp6", "udp6", "07"},
	} {
		ps, err := parseNetFile(filepath.Join(procDir, "net", f.file), f.proto, f.state, owners)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Proto < out[j].Proto
	})
	return out, nil
}

type owner struct {
	pid  int
	comm string
}

// socketOwners maps socket inodes to the first process holding them.
func socketOwners(procDir string) map[string]owner {
	m := map[string]owner{}
	pids, _ := os.ReadDir(procDir)
	for _, p := range pids {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join(procDir, p.Name(), "fd"))
		var comm string
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(procDir, p.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")
			if _, seen := m[inode]; seen {
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile(filepath.Join(procDir, p.Name(), "comm"))
				comm = strings.TrimSpace(string(b))
			}
			m[inode] = owner{pid, comm}
		}
	}
	return m
}

func parseNetFile(path, protoName, wantState string, owners map[string]owner) ([]proto.Port, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil // e.g. no IPv6
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	var out []proto.Port
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != wantState {
			continue
		}
		addr, port, err := decodeAddr(fields[1])
		if err != nil {
			continue
		}
		p := proto.Port{Proto: protoName, Address: addr, Port: port}
		if o, ok := owners[fields[9]]; ok {
			p.PID, p.Process = o.pid, o.comm
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// decodeAddr parses /proc/net's "0100007F:0016": the address is in host
// byte order per 32-bit word.
func decodeAddr(s string) (string, int, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", 0, err
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", 0, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return net.IP(raw).String(), int(port), nil
}
