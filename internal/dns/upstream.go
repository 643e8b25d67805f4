package dns

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
)

// Where the host's resolvers are configured. ResolvedConf holds
// systemd-resolved's real upstreams when /etc/resolv.conf names only its
// local stub (127.0.0.53), which would send `.vm` back to banger.
var (
	ResolvConf   = "/etc/resolv.conf"
	ResolvedConf = "/run/systemd/resolve/resolv.conf"
)

// nameservers reads the nameserver lines of a resolv.conf.
func nameservers(path string) ([]netip.Addr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, a)
			}
		}
	}
	return out, sc.Err()
}

func isResolvedStub(a netip.Addr) bool {
	return a == netip.MustParseAddr("127.0.0.53") || a == netip.MustParseAddr("127.0.0.54")
}

// HostUpstreams returns the host's resolvers as "host:53", without the
// excluded addresses (banger's own) and with systemd-resolved's stub
// replaced by its upstreams. No resolver at all is an error.
func HostUpstreams(path string, exclude ...netip.Addr) ([]string, error) {
	addrs, err := nameservers(path)
	if err != nil {
		return nil, fmt.Errorf("read the host's resolvers: %w", err)
	}
	stubOnly := len(addrs) > 0
	for _, a := range addrs {
		stubOnly = stubOnly && isResolvedStub(a)
	}
	if stubOnly {
		if real, err := nameservers(ResolvedConf); err == nil && len(real) > 0 {
			addrs, path = real, ResolvedConf
		}
	}
	var out []string
	for _, a := range addrs {
		skip := false
		for _, e := range exclude {
			skip = skip || a.Unmap() == e.Unmap()
		}
		if !skip {
			out = append(out, net.JoinHostPort(a.String(), "53"))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dns: no upstream DNS resolvers in %s (banger forwards every name outside .vm to them): add a nameserver line", path)
	}
	return out, nil
}

// UpstreamSource returns a function for Server.Upstreams that re-reads
// path when it changes (a laptop moving between networks). A stat per
// forwarded query is cheap next to the query itself.
func UpstreamSource(path string, exclude ...netip.Addr) func() ([]string, error) {
	var (
		mu    sync.Mutex
		stamp string
		ups   []string
		err   error
	)
	return func() ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		st := ""
		if fi, serr := os.Stat(path); serr == nil {
			st = fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
		}
		if st != stamp || ups == nil {
			stamp = st
			ups, err = HostUpstreams(path, exclude...)
		}
		return ups, err
	}
}
