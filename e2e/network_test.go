package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// The fake internet: a namespace this test creates, joined to the test
// namespace by a veth pair, with an HTTP and a DNS server on a private
// address. The test namespace routes to it by default and uses it as its
// resolver (through /etc/netns/NS/resolv.conf, which `ip netns exec`
// mounts over /etc/resolv.conf), so guest traffic leaves through banger's
// NAT exactly as it would to the real internet — and goes nowhere else.
const (
	upAddr  = "172.30.99.2" // the upstream namespace
	upLocal = "172.30.99.1" // the test namespace's side: guests' NAT address
	upName  = "web.upstream.test"
	// metadataAddr is where cloud VMs find their metadata service.
	metadataAddr = "169.254.169.254"
)

type upstream struct {
	ns   string
	hits chan string // remote addresses seen by the HTTP server
}

// inNetns runs fn on a thread moved into the named namespace; sockets fn
// opens stay there. The thread is never unlocked, so it is discarded.
func inNetns(t *testing.T, name string, fn func() error) {
	t.Helper()
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(h); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func newUpstream(t *testing.T, e *env) *upstream {
	t.Helper()
	u := &upstream{ns: fmt.Sprintf("bgup%d", os.Getpid()%100000), hits: make(chan string, 16)}
	run(t, "ip", "netns", "add", u.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", u.ns).Run() })
	for _, args := range [][]string{
		{"-n", e.ns, "link", "add", "upl0", "type", "veth", "peer", "name", "upl1", "netns", u.ns},
		{"-n", e.ns, "addr", "add", upLocal + "/24", "dev", "upl0"},
		{"-n", e.ns, "link", "set", "upl0", "up"},
		{"-n", e.ns, "link", "set", "lo", "up"}, // local delivery, as on any host
		{"-n", e.ns, "route", "add", "default", "via", upAddr},
		{"-n", u.ns, "addr", "add", upAddr + "/24", "dev", "upl1"},
		{"-n", u.ns, "link", "set", "upl1", "up"},
		{"-n", u.ns, "link", "set", "lo", "up"},
		// A stand-in for a cloud metadata service, beyond the host.
		{"-n", u.ns, "addr", "add", metadataAddr + "/32", "dev", "lo"},
	} {
		run(t, "ip", args...)
	}
	var ml net.Listener
	inNetns(t, u.ns, func() (err error) {
		ml, err = net.Listen("tcp4", metadataAddr+":80")
		return err
	})
	go http.Serve(ml, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "metadata: secret") }))
	var hl, tl net.Listener
	var pc net.PacketConn
	inNetns(t, u.ns, func() (err error) {
		if hl, err = net.Listen("tcp4", upAddr+":8080"); err != nil {
			return err
		}
		if pc, err = net.ListenPacket("udp4", upAddr+":53"); err != nil {
			return err
		}
		tl, err = net.Listen("tcp4", upAddr+":53")
		return err
	})
	go http.Serve(hl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case u.hits <- r.RemoteAddr:
		default:
		}
		fmt.Fprintln(w, "hello from upstream")
	}))
	dh := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if strings.EqualFold(r.Question[0].Name, upName+".") && r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(upName + ". 60 IN A " + upAddr)
			m.Answer = []dns.RR{rr}
		} else if r.Question[0].Qtype != dns.TypeAAAA || !strings.EqualFold(r.Question[0].Name, upName+".") {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	servers := []*dns.Server{{PacketConn: pc, Handler: dh}, {Listener: tl, Handler: dh}}
	for _, s := range servers {
		go s.ActivateAndServe()
	}
	t.Cleanup(func() {
		hl.Close()
		for _, s := range servers {
			s.Shutdown()
		}
	})
	u.setResolver(t, e, "nameserver "+upAddr+"\n")
	t.Cleanup(func() {
		os.RemoveAll(filepath.Join("/etc/netns", e.ns))
		os.Remove("/etc/netns") // only if empty
	})
	return u
}

// setResolver writes the test namespace's resolv.conf in place (a bind
// mount follows the inode, so it must not be replaced).
func (u *upstream) setResolver(t *testing.T, e *env, body string) {
	t.Helper()
	dir := filepath.Join("/etc/netns", e.ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// inNS runs a command inside the test namespace with the test's env.
func (e *env) inNS(name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", e.ns, name}, args...)...)
	cmd.Env = e.vars
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *env) writeConfig(extra string) {
	os.WriteFile(filepath.Join(e.home, "config", "banger", "config.toml"),
		[]byte("[snapshots]\nwarm = false\n[vm_defaults]\nvcpu = 2\nmemory = 1024\n"+extra), 0o600)
	e.stopDaemon() // the config is read at daemon start
}

// assertNoBangerNet checks, with ip and nft inside the test namespace,
// that nothing of banger's network is there.
func (e *env) assertNoBangerNet(fwdBefore string) {
	e.t.Helper()
	// banger's links carry the alias "banger"; TAPs are bgt*/bgp*. (A
	// foreign banger0 made by the test itself is not banger's.)
	for _, line := range strings.Split(run(e.t, "ip", "-n", e.ns, "-o", "link", "show"), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (strings.Contains(line, "alias banger") || strings.HasPrefix(f[1], "bgt") || strings.HasPrefix(f[1], "bgp")) {
			e.t.Errorf("link left: %s", line)
		}
	}
	if a := run(e.t, "ip", "-n", e.ns, "-o", "-4", "addr", "show"); strings.Contains(a, "10.77.0.") {
		e.t.Errorf("address left:\n%s", a)
	}
	if r := run(e.t, "ip", "-n", e.ns, "route", "show"); strings.Contains(r, "10.77.0.0/24") {
		e.t.Errorf("route left:\n%s", r)
	}
	if rs, err := e.inNS("nft", "list", "ruleset"); err != nil || strings.TrimSpace(rs) != "" {
		e.t.Errorf("nft ruleset left (err %v):\n%s", err, rs)
	}
	if fwd, _ := e.inNS("cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(fwd) != fwdBefore {
		e.t.Errorf("ip_forward = %s, was %s", strings.TrimSpace(fwd), fwdBefore)
	}
}

// failCreate expects vm create to fail with want, leaving no network, and
// deletes the failed VM.
func (e *env) failCreate(name, want, fwd string) {
	e.t.Helper()
	r := e.banger("vm", "create", "--name", name)
	if r.code == 0 || !strings.Contains(r.err, want) {
		e.t.Errorf("vm create %s: exit %d, stderr %q; want failure mentioning %q", name, r.code, r.err, want)
	}
	e.assertNoBangerNet(fwd)
	e.banger("vm", "delete", name)
}

func TestNetwork(t *testing.T) {
	e := newEnv(t)
	up := newUpstream(t, e)
	// A new namespace starts with the host's ip_forward (1 on a host
	// running Docker, or where banger ran before). This test checks that
	// banger turns forwarding on and teardown turns it off again, so it
	// starts from off; hostnet's unit tests cover a host where it is on.
	if out, err := e.inNS("sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"); err != nil {
		t.Fatalf("turn ip_forward off in the test namespace: %v\n%s", err, out)
	}
	const fwd = "0"
	sshCfg := filepath.Join(e.home, ".ssh", "config")
	foreign := "# mine\nHost elsewhere\n    HostName 192.0.2.9\n    User me\n"
	os.MkdirAll(filepath.Dir(sshCfg), 0o700)
	os.WriteFile(sshCfg, []byte(foreign), 0o600)

	t.Run("bad input fails clearly and applies nothing", func(t *testing.T) {
		e.t = t
		e.writeConfig("[network]\nsubnet = \"172.30.99.0/24\"\n")
		e.failCreate("clash", "overlaps the host route 172.30.99.0/24", fwd)
		e.writeConfig("")

		run(t, "ip", "-n", e.ns, "link", "add", "banger0", "type", "veth", "peer", "name", "fakepeer0")
		e.failCreate("taken", "banger0 exists and is a veth, not a bridge", fwd)
		run(t, "ip", "-n", e.ns, "link", "del", "banger0")
		run(t, "ip", "-n", e.ns, "link", "add", "banger0", "type", "bridge")
		e.failCreate("taken2", "was not created by banger", fwd)
		run(t, "ip", "-n", e.ns, "link", "del", "banger0")

		var held net.PacketConn
		inNetns(t, e.ns, func() (err error) { held, err = net.ListenPacket("udp4", "0.0.0.0:42069"); return err })
		e.failCreate("portheld", fmt.Sprintf("port 42069 on 10.77.0.1 is in use by pid %d", os.Getpid()), fwd)
		held.Close()

		up.setResolver(t, e, "# no nameserver\n")
		e.failCreate("noresolv", "no upstream DNS resolvers", fwd)
		up.setResolver(t, e, "nameserver "+upAddr+"\n")

		broken := foreign + "# >>> banger >>>\n"
		os.WriteFile(sshCfg, []byte(broken), 0o600)
		if r := e.banger("ssh-config", "--install"); r.code == 0 || !strings.Contains(r.err, "malformed banger region") {
			t.Errorf("ssh-config --install on a broken region: exit %d %q", r.code, r.err)
		}
		if b, _ := os.ReadFile(sshCfg); string(b) != broken {
			t.Errorf("broken ssh config changed:\n%s", b)
		}
		os.WriteFile(sshCfg, []byte(foreign), 0o600)
		if vms := e.vmList(); len(vms) != 0 {
			t.Errorf("VMs left: %v", vms)
		}
	})

	t.Run("NAT, DNS, ssh by name, teardown", func(t *testing.T) {
		e.t = t
		e.must("vm", "create", "--name", "web", "--disk-size", "2G")
		var shown struct {
			DNS     string `json:"dns"`
			Objects []struct{ Kind, Name, Detail string }
		}
		r := e.must("network", "show", "--json")
		if err := json.Unmarshal([]byte(r.out), &shown); err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, o := range shown.Objects {
			kinds[o.Kind+" "+o.Name] = true
		}
		for _, want := range []string{"link banger0", "address 10.77.0.1/24", "route 10.77.0.0/24", "nft-table ip banger",
			"sysctl net.ipv4.ip_forward", "dns udp+tcp 10.77.0.1:42069", "link bgp0"} {
			if !kinds[want] {
				t.Errorf("network show lacks %q:\n%s", want, r.out)
			}
		}
		rs, _ := e.inNS("nft", "list", "ruleset")
		if !strings.Contains(rs, "ip saddr 10.77.0.0/24 ip daddr != 10.77.0.0/24 masquerade") ||
			!strings.Contains(rs, "udp dport 53 dnat to 10.77.0.1:42069") {
			t.Errorf("ruleset:\n%s", rs)
		}
		var ip string
		for _, v := range e.vmList() {
			ip, _ = v["ip"].(string)
		}

		// The host side resolves <name>.vm with a real DNS client, on
		// banger's port and on port 53 of the gateway.
		for _, args := range [][]string{{"+short", "@10.77.0.1", "-p", "42069", "web.vm"}, {"+short", "@10.77.0.1", "WEB.vm"}} {
			if out, err := e.inNS("dig", append(args, "+time=3", "+tries=2")...); err != nil || strings.TrimSpace(out) != ip {
				t.Errorf("dig %v = %q (%v), want %s", args, out, err, ip)
			}
		}
		if out, _ := e.inNS("dig", "@10.77.0.1", "nope.vm", "+time=3"); !strings.Contains(out, "status: NXDOMAIN") {
			t.Errorf("dig nope.vm:\n%s", out)
		}
		if out, _ := e.inNS("dig", "+short", "@10.77.0.1", upName, "+time=3"); strings.TrimSpace(out) != upAddr {
			t.Errorf("dig %s through banger = %q", upName, out)
		}

		// A service of the host's own, listening on every address: guests
		// must not reach it through the gateway (only DNS and ping).
		var hostSvc net.Listener
		inNetns(t, e.ns, func() (err error) {
			hostSvc, err = net.Listen("tcp4", "0.0.0.0:8099")
			return err
		})
		defer hostSvc.Close()
		go http.Serve(hostSvc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "host service") }))

		// A guest resolves an upstream name and another VM's name through
		// banger's DNS, and fetches from the upstream server through NAT.
		// (A second VM, run through the agent: it needs no sshd.)
		// The upstream sits on a private address, which guests reach
		// only when allowed (issue 16).
		r = e.must("vm", "run", "--rm", "--allow-out", upAddr, "--", "sh", "-c",
			"getent hosts "+upName+"; getent hosts web.vm; curl -sS --max-time 20 http://"+upName+":8080/; "+
				"ping -c1 -W5 10.77.0.1 >/dev/null && echo gateway-pings; "+
				"curl -s --max-time 3 http://10.77.0.1:8099/ || echo host-service-blocked; "+
				"curl -s --max-time 3 http://"+metadataAddr+"/ || echo metadata-blocked")
		if !strings.Contains(r.out, upAddr+" ") || !strings.Contains(r.out, ip+" ") || !strings.Contains(r.out, "hello from upstream") {
			t.Errorf("guest resolve + fetch:\n%s\nstderr:\n%s", r.out, r.err)
		}
		if !strings.Contains(r.out, "gateway-pings") || !strings.Contains(r.out, "host-service-blocked") || strings.Contains(r.out, "host service") ||
			!strings.Contains(r.out, "metadata-blocked") || strings.Contains(r.out, "secret") {
			t.Errorf("guest → host filter:\n%s\nstderr:\n%s", r.out, r.err)
		}
		select {
		case from := <-up.hits:
			if !strings.HasPrefix(from, upLocal+":") {
				t.Errorf("upstream saw %s, want the NAT address %s", from, upLocal)
			}
		case <-time.After(5 * time.Second):
			t.Error("the upstream HTTP server saw no request")
		}

		// Real OpenSSH through the installed Include, by name, with
		// banger's pinned host key. (OpenSSH reads the passwd home, not
		// $HOME, so the test names its config with -F.) sshd may still be
		// starting: retry for a while.
		e.must("ssh-config", "--install")
		e.must("ssh-config", "--install")
		deadline := time.Now().Add(2 * time.Minute)
		for {
			out, err := e.inNS("ssh", "-F", sshCfg, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "web.vm", "hostname")
			if err == nil && strings.TrimSpace(out) == "web" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ssh web.vm hostname: %q %v", out, err)
			}
			time.Sleep(time.Second)
		}

		if r := e.banger("network", "teardown"); r.code == 0 || !strings.Contains(r.err, "web (running)") {
			t.Errorf("teardown with a running VM: exit %d %q", r.code, r.err)
		}
		e.must("vm", "delete", "web")
		r = e.must("network", "teardown")
		if !strings.Contains(r.out, "removed") {
			t.Errorf("teardown output: %s", r.out)
		}
		e.assertNoBangerNet(fwd)
		if l := run(t, "ip", "-n", e.ns, "-o", "link", "show"); strings.Contains(l, "banger0") {
			t.Errorf("bridge left:\n%s", l)
		}
		if r := e.must("network", "show"); !strings.Contains(r.out, "nothing on this host's network") {
			t.Errorf("network show after teardown:\n%s", r.out)
		}
		e.must("ssh-config", "--uninstall")
		if b, _ := os.ReadFile(sshCfg); string(b) != foreign {
			t.Errorf("~/.ssh/config after uninstall:\n%q\nwant\n%q", b, foreign)
		}
		e.assertClean()
	})
}
