package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// publicAddr stands for an address on the internet: outside every range
// nat keeps guests off (TEST-NET-2), on the fake upstream.
const publicAddr = "198.51.100.2"

// addPublic gives the upstream namespace publicAddr with an HTTP server.
func addPublic(t *testing.T, up *upstream) {
	t.Helper()
	run(t, "ip", "-n", up.ns, "addr", "add", publicAddr+"/32", "dev", "lo")
	serveHTTPIn(t, up.ns, "tcp4", publicAddr+":8080", "hello from the internet")
}

// serveHTTPIn serves body over HTTP on addr inside namespace ns until the
// test ends.
func serveHTTPIn(t *testing.T, ns, network, addr, body string) {
	t.Helper()
	var l net.Listener
	inNetns(t, ns, func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	t.Cleanup(func() { l.Close() })
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, body) }))
}

// guestSh runs a shell command in a VM through the agent.
func (e *env) guestSh(vm, script string) string {
	e.t.Helper()
	// IF is the guest's interface (named by the guest's kernel).
	return e.banger("vm", "exec", vm, "--", "sh", "-c", `IF=$(ip -o -4 route show default | awk '{print $5}'); `+script).out
}

// fetch reports what a guest gets from url within 4 s ("" when nothing).
func (e *env) fetch(vm, url string) string {
	e.t.Helper()
	return strings.TrimSpace(e.guestSh(vm, "curl -s --max-time 4 "+url+" || true"))
}

// guestHTTP starts a tiny HTTP server in a guest (perl is in every
// Debian: perl-base), answering body on port, and returns once it
// answers inside the guest (perl starts slowly under TCG).
func (e *env) guestHTTP(vm string, port int, body string) {
	e.t.Helper()
	e.must("vm", "exec", vm, "--", "sh", "-c", fmt.Sprintf(
		`setsid -f perl -MIO::Socket::INET -e '$SIG{PIPE}="IGNORE"; $s=IO::Socket::INET->new(LocalPort=>%d,Listen=>16,ReuseAddr=>1) or die $!; `+
			`while($c=$s->accept){ while(<$c>){ last if /^\r?$/ } print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n"; close $c }' >/dev/null 2>&1; `+waitListen(port),
		port, body))
}

func TestNetPolicy(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, e)
	addPublic(t, up)
	e.must("vm", "create", "--name", "pa", "--group", "g1")
	e.must("vm", "create", "--name", "pb")
	ips := map[string]string{}
	macs := map[string]string{}
	for _, v := range e.vmList() {
		ips[fmt.Sprint(v["name"])], macs[fmt.Sprint(v["name"])] = fmt.Sprint(v["ip"]), fmt.Sprint(v["mac"])
	}
	public, private := "http://"+publicAddr+":8080/", "http://"+upAddr+":8080/"

	t.Run("nat reaches the internet, no private range, no other guest", func(t *testing.T) {
		e.t = t
		if got := e.fetch("pa", public); got != "hello from the internet" {
			t.Errorf("nat guest → public address: %q", got)
		}
		if got := e.fetch("pa", private); got != "" {
			t.Errorf("nat guest reached the private upstream: %q", got)
		}
		e.guestHTTP("pb", 8000, "hello from pb")
		if got := e.fetch("pb", "http://127.0.0.1:8000/"); got != "hello from pb" {
			t.Fatalf("pb's own server: %q", got)
		}
		if got := e.fetch("pa", "http://"+ips["pb"]+":8000/"); got != "" {
			t.Errorf("pa reached pb (no common group): %q", got)
		}
		if r := e.must("vm", "show", "pa", "--json"); !strings.Contains(r.out, `"mode": "nat"`) || !strings.Contains(r.out, `"group": "g1"`) {
			t.Errorf("vm show --json lacks the policy:\n%s", r.out)
		}
	})

	t.Run("vm set on a running VM changes new connections at once", func(t *testing.T) {
		e.t = t
		e.must("vm", "set", "pa", "--allow-out", upAddr+"/32:8080")
		if got := e.fetch("pa", private); got != "hello from upstream" {
			t.Errorf("allowed private address:port: %q", got)
		}
		e.must("vm", "set", "pa", "--net", "isolated")
		if got := e.fetch("pa", public); got != "" {
			t.Errorf("isolated guest reached the internet: %q", got)
		}
		if got := e.fetch("pa", private); got != "hello from upstream" {
			t.Errorf("isolated guest lost its allowed address: %q", got)
		}
		if out := e.guestSh("pa", "getent hosts pb.vm"); !strings.Contains(out, ips["pb"]) {
			t.Errorf("isolated guest cannot resolve pb.vm: %q", out)
		}
		// Nor does DNS carry anything out: a name it has no rule for is
		// refused by banger's DNS, not forwarded.
		if out := e.guestSh("pa", "getent hosts "+upName+" || echo unresolved"); !strings.Contains(out, "unresolved") {
			t.Errorf("isolated guest resolved %s: %q", upName, out)
		}
		e.must("vm", "set", "pa", "--net", "nat", "--allow-out", "", "--deny-out", publicAddr)
		if out := e.guestSh("pa", "getent hosts "+upName+" || echo unresolved"); !strings.Contains(out, upAddr) {
			t.Errorf("nat guest cannot resolve %s: %q", upName, out)
		}
		if got := e.fetch("pa", public); got != "" {
			t.Errorf("denied address reached: %q", got)
		}
		if r := e.banger("vm", "set", "pa", "--deny-out", "pypi.org"); r.code == 0 || !strings.Contains(r.err, "a domain can only be allowed") {
			t.Errorf("deny of a domain: exit %d %q", r.code, r.err)
		}
		if r := e.must("vm", "show", "pa", "--json"); !strings.Contains(r.out, publicAddr) {
			t.Errorf("a refused change altered the policy:\n%s", r.out)
		}
	})

	t.Run("a domain rule allows what the name resolves to", func(t *testing.T) {
		e.t = t
		e.must("vm", "set", "pa", "--net", "isolated", "--deny-out", "", "--allow-out", upName+":8080")
		if got := e.fetch("pa", private); got != "" {
			t.Errorf("address reached before its name was resolved: %q", got)
		}
		if got := e.fetch("pa", "http://"+upName+":8080/"); got != "hello from upstream" {
			t.Errorf("allowed domain: %q", got)
		}
		if got := e.fetch("pa", public); got != "" {
			t.Errorf("another address reached: %q", got)
		}
		// DNS elsewhere than banger's is refused while a domain rule exists.
		query := `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(PeerAddr=>"` + upAddr + `:53",Proto=>"udp") or die; ` +
			`$s->send(pack("n6",1,256,1,0,0,0)."\3web\10upstream\4test\0".pack("n2",1,1)); $r=""; ` +
			`eval{local $SIG{ALRM}=sub{die}; alarm 3; $s->recv($r,512)}; print length($r) ? "answered\n" : "refused\n"'`
		if out := e.guestSh("pa", query); !strings.Contains(out, "refused") {
			t.Errorf("direct DNS to the upstream: %q", out)
		}
	})

	t.Run("spoofing another guest's address or MAC gets nothing through", func(t *testing.T) {
		e.t = t
		e.must("vm", "set", "pa", "--net", "nat", "--allow-out", "")
		out := e.guestSh("pa", "ip addr add "+ips["pb"]+"/32 dev $IF && "+
			"curl -s --max-time 4 --interface "+ips["pb"]+" "+public+" || echo spoof-blocked; "+
			"ping -c2 -W1 -I "+ips["pb"]+" 10.77.0.1 >/dev/null 2>&1; ip addr del "+ips["pb"]+"/32 dev $IF")
		if !strings.Contains(out, "spoof-blocked") || strings.Contains(out, "internet") {
			t.Errorf("spoofed source address: %q", out)
		}
		// The host still sends pb's traffic to pb: pa's ARP for pb's
		// address never got through.
		if n, _ := e.inNS("ip", "neigh", "show", ips["pb"]); strings.Contains(n, macs["pa"]) {
			t.Errorf("the host learned pa's MAC for pb's address: %s", n)
		}
		out = e.guestSh("pa", "ip link set $IF address "+macs["pb"]+" && "+
			"(curl -s --max-time 4 "+public+" || echo mac-blocked); ip link set $IF address "+macs["pa"])
		if !strings.Contains(out, "mac-blocked") {
			t.Errorf("spoofed MAC: %q", out)
		}
		if got := e.fetch("pa", public); got != "hello from the internet" {
			t.Errorf("pa with its own addresses again: %q", got)
		}
	})

	t.Run("no IPv6 to the host through the bridge", func(t *testing.T) {
		e.t = t
		serveHTTPIn(t, e.ns, "tcp", "[::]:8097", "host v6 service")
		if a, _ := e.inNS("ip", "-6", "addr", "show", "dev", "banger0"); strings.Contains(a, "inet6") {
			t.Errorf("the bridge has an IPv6 address:\n%s", a)
		}
		if v, _ := e.inNS("cat", "/proc/sys/net/ipv6/conf/banger0/accept_ra"); strings.TrimSpace(v) != "0" {
			t.Errorf("bridge accept_ra = %q", v)
		}
		// Everything the guest can try: all-nodes multicast to find the
		// host, then the EUI-64 link-local of the bridge's MAC.
		out := e.guestSh("pa", "ping -6 -c2 -W2 ff02::1%$IF 2>&1 | grep -c 'bytes from' ; "+
			"for a in $(ip -6 neigh show dev $IF | cut -d' ' -f1); do curl -s --max-time 3 \"http://[$a%$IF]:8097/\"; done; echo done")
		if strings.Contains(out, "host v6 service") {
			t.Errorf("guest reached the host's [::] service:\n%s", out)
		}
	})

	t.Run("guests of one group reach each other", func(t *testing.T) {
		e.t = t
		e.must("vm", "create", "--name", "pc", "--group", "g1")
		e.guestHTTP("pc", 8000, "hello from pc")
		ip := ""
		for _, v := range e.vmList() {
			if v["name"] == "pc" {
				ip = fmt.Sprint(v["ip"])
			}
		}
		if got := e.fetch("pa", "http://"+ip+":8000/"); got != "hello from pc" {
			t.Errorf("pa → pc in group g1: %q", got)
		}
		if got := e.fetch("pb", "http://"+ip+":8000/"); got != "" {
			t.Errorf("pb (no group) reached pc: %q", got)
		}
		// Kept across a restart of the VM.
		e.must("vm", "stop", "pa")
		e.must("vm", "start", "pa")
		if r := e.must("vm", "show", "pa", "--json"); !strings.Contains(r.out, `"mode": "nat"`) || !strings.Contains(r.out, `"group": "g1"`) {
			t.Errorf("policy after restart:\n%s", r.out)
		}
		if got := e.fetch("pa", private); got != "" {
			t.Errorf("restarted nat guest reached the private upstream: %q", got)
		}
	})
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
