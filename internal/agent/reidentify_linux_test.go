package agent

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func reidentifyParams() proto.ReidentifyParams {
	return proto.ReidentifyParams{
		Hostname: "try-2", OldMAC: "52:54:00:aa:00:01", MachineID: strings.Repeat("0f", 16),
		Net:         &proto.GuestNet{MAC: "52:54:00:aa:00:02", Address: "172.30.9.7/24", Gateway: "172.30.9.1", DNS: []string{"172.30.9.1"}},
		SSHHostKeys: map[string]string{"ssh_host_ed25519_key": "NEWKEY\n", "ssh_host_ed25519_key.pub": "ssh-ed25519 NEW\n"},
	}
}

// A parent's files in a tree, a fake /proc whose one listening sshd is
// a real process: apply rewrites the identity files, sets the hostname
// and sends that process SIGHUP; an sshd session (parent not 1) and other
// programs are left alone.
func TestReidentifyAppliesTheIdentity(t *testing.T) {
	root, proc := t.TempDir(), t.TempDir()
	for name, content := range map[string]string{
		"etc/hostname": "dev\n", "etc/hosts": "127.0.0.1\tlocalhost\n127.0.1.1\tdev\n", "etc/machine-id": strings.Repeat("1", 32) + "\n",
		"etc/ssh/ssh_host_ed25519_key": "OLD", "etc/ssh/ssh_host_rsa_key": "OLDRSA", "etc/resolv.conf": "nameserver 9.9.9.9\n",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	listener, session := exec.Command("sleep", "30"), exec.Command("sleep", "30")
	for _, c := range []*exec.Cmd{listener, session} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	fakeStat := func(pid int, comm string, ppid int) {
		d := filepath.Join(proc, fmt.Sprint(pid))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "stat"), []byte(fmt.Sprintf("%d (%s) S %d 1 1 0", pid, comm, ppid)), 0o644)
	}
	fakeStat(listener.Process.Pid, "sshd", 1)
	fakeStat(session.Process.Pid, "sshd", listener.Process.Pid)
	fakeStat(os.Getpid(), "not sshd) S 1", 1) // a comm with ") S 1" in it is not sshd
	var host string
	l := liveIdentity{root: root, proc: proc, sethostname: func(b []byte) error { host = string(b); return nil }}
	res, err := l.apply(reidentifyParams())
	if err != nil {
		t.Fatal(err)
	}
	if res.SSHD != "reloaded" || host != "try-2" {
		t.Errorf("result %+v, hostname %q", res, host)
	}
	read := func(name string) string { b, _ := os.ReadFile(filepath.Join(root, name)); return string(b) }
	for name, want := range map[string]string{
		"etc/hostname": "try-2\n", "etc/machine-id": strings.Repeat("0f", 16) + "\n", "etc/resolv.conf": "nameserver 172.30.9.1\n",
		"etc/ssh/ssh_host_ed25519_key": "NEWKEY\n", "etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 NEW\n", "etc/ssh/ssh_host_rsa_key": "",
	} {
		if got := read(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if h := read("etc/hosts"); !strings.Contains(h, "127.0.1.1\ttry-2\n") || strings.Contains(h, "dev") {
		t.Errorf("hosts: %q", h)
	}
	if err := listener.Wait(); err == nil || listener.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGHUP {
		t.Errorf("listening sshd: %v, want killed by SIGHUP", err)
	}
	if session.ProcessState != nil {
		t.Error("an sshd session was signalled")
	}
}

// Bad params change nothing, over a real agent session too.
func TestReidentifyRefusesBadParamsBeforeChangingAnything(t *testing.T) {
	root := t.TempDir()
	p := reidentifyParams()
	p.MachineID = "short"
	l := liveIdentity{root: root, proc: t.TempDir(), sethostname: func([]byte) error { t.Error("hostname set"); return nil }}
	if _, err := l.apply(p); err == nil || !strings.Contains(err.Error(), "machine-id") {
		t.Fatalf("apply: %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("files written: %v", entries)
	}
	c := connectAgent(t, &Server{}, nil)
	if _, err := c.Reidentify(testCtx(t), p); err == nil || !strings.Contains(err.Error(), "machine-id") {
		t.Fatalf("over the channel: %v", err)
	}
}

// renumber in a network namespace of the test's own: a link with
// the parent's MAC and address gets the child's, the old address goes,
// the default route points at the gateway.
func TestRenumberInANamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (CAP_NET_ADMIN) for a network namespace: run the agent tests as root, as CI does")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { netns.Set(orig); ns.Close() }()
	p := reidentifyParams()
	old, _ := net.ParseMAC(p.OldMAC)
	la := netlink.NewLinkAttrs()
	la.Name, la.HardwareAddr = "eth0", old
	// a veth pair: dummy links need a module this host may lack
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "peer0"}); err != nil {
		t.Fatal(err)
	}
	link, _ := netlink.LinkByName("eth0")
	oldAddr, _ := netlink.ParseAddr("172.30.9.3/24")
	netlink.AddrAdd(link, oldAddr)
	netlink.LinkSetUp(link)
	if peer, err := netlink.LinkByName("peer0"); err == nil {
		netlink.LinkSetUp(peer)
	}
	if err := renumber(p.OldMAC, p.Net); err != nil {
		t.Fatal(err)
	}
	link, _ = netlink.LinkByName("eth0")
	if got := link.Attrs().HardwareAddr.String(); got != p.Net.MAC {
		t.Errorf("mac %s", got)
	}
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != p.Net.Address {
		t.Errorf("addresses %v, want only %s", addrs, p.Net.Address)
	}
	routes, _ := netlink.RouteList(link, netlink.FAMILY_V4)
	gw := false
	for _, r := range routes {
		gw = gw || (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == p.Net.Gateway
	}
	if !gw {
		t.Errorf("no default route via %s: %v", p.Net.Gateway, routes)
	}
	// Idempotent: a second call (the host retrying) finds the new MAC.
	if err := renumber(p.OldMAC, p.Net); err != nil {
		t.Errorf("again: %v", err)
	}
}

// An agent that is not a guest's (a test's, the fake VMM's) refuses a
// valid reidentify: it would rename its host.
func TestReidentifyRefusedOffGuest(t *testing.T) {
	host, _ := os.Hostname()
	c := connectAgent(t, &Server{}, nil)
	if _, err := c.Reidentify(testCtx(t), reidentifyParams()); err == nil || !strings.Contains(err.Error(), "does not run in a banger guest") {
		t.Fatalf("reidentify on a host agent: %v", err)
	}
	if h, _ := os.Hostname(); h != host {
		t.Fatalf("hostname changed from %q to %q", host, h)
	}
}

// sshd's pidfile names the listener to reload; a stale one (its PID now
// another program) falls back to the scan of proc.
func TestReloadSSHDByPidfile(t *testing.T) {
	proc, pidFile := t.TempDir(), filepath.Join(t.TempDir(), "sshd.pid")
	start := func() *exec.Cmd {
		c := exec.Command("sleep", "30")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	stat := func(pid int, comm string) {
		d := filepath.Join(proc, fmt.Sprint(pid))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "stat"), []byte(fmt.Sprintf("%d (%s) S 1 1 1 0", pid, comm)), 0o644)
	}
	hungUp := func(c *exec.Cmd) bool {
		err := c.Wait()
		return err != nil && c.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGHUP
	}
	named := start()
	stat(named.Process.Pid, "sshd")
	os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", named.Process.Pid)), 0o644)
	if n, err := reloadSSHD(t.TempDir(), pidFile); n != 0 || err != nil { // not in this proc: not an sshd
		t.Fatalf("a pid that proc does not show: %d %v", n, err)
	}
	if n, err := reloadSSHD(proc, pidFile); n != 1 || err != nil || !hungUp(named) {
		t.Fatalf("the pidfile's sshd: %d %v", n, err)
	}
	other, listener := start(), start()
	stat(other.Process.Pid, "sleep")
	stat(listener.Process.Pid, "sshd")
	os.RemoveAll(filepath.Join(proc, fmt.Sprint(named.Process.Pid)))
	os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", other.Process.Pid)), 0o644)
	if n, err := reloadSSHD(proc, pidFile); n != 1 || err != nil || !hungUp(listener) {
		t.Fatalf("a stale pidfile: %d %v", n, err)
	}
	if other.ProcessState != nil {
		t.Error("the program with the pidfile's stale PID was signalled")
	}
}
