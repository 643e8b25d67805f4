package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// The reidentify op (proto.OpReidentify): a fork's child and a warm
// clone continue a running userland (the parent's, the template's), so
// their identity is changed in place.

func init() {
	ops[proto.OpReidentify] = func(s *Server, st net.Conn, req proto.Request) {
		var p proto.ReidentifyParams
		if err := json.Unmarshal(req.Params, &p); err != nil {
			replyData(st, nil, fmt.Errorf("reidentify: bad params: %v", err))
			return
		}
		if err := p.Check(); err != nil {
			replyData(st, nil, err)
			return
		}
		if !s.Guest {
			replyData(st, nil, errors.New("reidentify: refused: this agent does not run in a banger guest (it would rename its host)"))
			return
		}
		res, err := liveIdentity{root: "/", proc: "/proc", sethostname: unix.Sethostname, netlink: true}.apply(p)
		if err == nil {
			s.log().Info("reidentified", "hostname", p.Hostname, "address", p.Net.Address, "sshd", res.SSHD)
		}
		replyData(st, res, err)
	}
}

// liveIdentity applies a ReidentifyParams to the system at root (tests
// use a temporary tree, a fake /proc and no netlink).
type liveIdentity struct {
	root, proc  string
	sethostname func([]byte) error
	netlink     bool // renumber the NIC (tests do it in their own namespace)
}

// apply checks p, then changes the NIC while it writes the hostname,
// resolv.conf, host keys and machine-id and then tells sshd to reload:
// none of those sends anything, and the reply (the first thing the guest
// sends after a restore) waits for both. Under TCG each half costs
// ~0.1–0.2 s, mostly translating code the restored guest runs for the
// first time. Every step runs; the errors come back together.
func (l liveIdentity) apply(p proto.ReidentifyParams) (proto.ReidentifyResult, error) {
	var res proto.ReidentifyResult
	if err := p.Check(); err != nil {
		return res, err
	}
	netErr := make(chan error, 1)
	if l.netlink {
		go func() { netErr <- renumber(p.OldMAC, p.Net) }()
	} else {
		netErr <- nil
	}
	var errs []error
	if err := l.sethostname([]byte(p.Hostname)); err != nil {
		errs = append(errs, fmt.Errorf("sethostname: %w", err))
	}
	a := configApplier{root: l.root, cfg: proto.GuestConfig{Hostname: p.Hostname, Net: p.Net, SSHHostKeys: p.SSHHostKeys}}
	errs = append(errs, a.writeHostname(), a.writeResolvConf(), a.writeSSHHostKeys(), l.writeMachineID(p.MachineID))
	n, err := reloadSSHD(l.proc, filepath.Join(l.root, "run/sshd.pid"))
	errs = append([]error{<-netErr}, append(errs, err)...)
	res.SSHD = "not running"
	if n > 0 {
		res.SSHD = "reloaded"
	}
	return res, errors.Join(errs...)
}

// writeMachineID rewrites /etc/machine-id in place: systemd may have
// bind-mounted /run/machine-id over it (an image ships it empty), and a
// rename onto a mount point fails; a write goes through to the file.
func (l liveIdentity) writeMachineID(id string) error {
	if err := os.WriteFile(filepath.Join(l.root, "etc/machine-id"), []byte(id+"\n"), 0o444); err != nil {
		return fmt.Errorf("write /etc/machine-id: %w", err)
	}
	return nil
}

// reloadSSHD sends SIGHUP to the listening sshd (comm "sshd", parent PID
// 1: systemd's ssh.service, or the agent as init): sshd re-executes
// itself and loads the host keys afresh; sessions (children of the
// listener) are untouched. The listener is the one sshd's pidfile names
// when it is one, else every one found in proc (a slower scan). It
// returns how many it signalled.
func reloadSSHD(proc, pidFile string) (int, error) {
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && listeningSSHD(proc, pid) {
			return hangUp(pid)
		}
	}
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0, fmt.Errorf("reload sshd: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !listeningSSHD(proc, pid) {
			continue
		}
		k, err := hangUp(pid)
		n += k
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// listeningSSHD says whether pid is a listening sshd: comm "sshd", parent 1.
func listeningSSHD(proc string, pid int) bool {
	if pid <= 1 {
		return false
	}
	stat, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	comm, ppid, ok := parseStat(string(stat))
	return ok && comm == "sshd" && ppid == 1
}

// hangUp sends pid SIGHUP; one that is already gone counts as none.
func hangUp(pid int) (int, error) {
	err := syscall.Kill(pid, syscall.SIGHUP)
	if errors.Is(err, syscall.ESRCH) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reload sshd %d: %w", pid, err)
	}
	return 1, nil
}

// parseStat reads comm and ppid from /proc/PID/stat ("pid (comm) S ppid
// …"; comm may hold spaces and parentheses, so the last ')' ends it).
func parseStat(s string) (comm string, ppid int, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return s[open+1 : end], ppid, err == nil
}

// renumber moves the NIC from the parent's identity to n: the link with
// the old MAC (or already the new one) gets the new MAC, every other IPv4 address removed, the new address
// and the default route through n.Gateway.
func renumber(oldMAC string, n *proto.GuestNet) error {
	old, _ := net.ParseMAC(oldMAC)
	mac, _ := net.ParseMAC(n.MAC)
	addr, err := netlink.ParseAddr(n.Address)
	if err != nil {
		return fmt.Errorf("parse address %q: %w", n.Address, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var link netlink.Link
	for _, l := range links {
		if hw := l.Attrs().HardwareAddr; bytes.Equal(hw, old) || bytes.Equal(hw, mac) {
			link = l
			break
		}
	}
	// No guessing: the parent's NIC has the old MAC,
	// and a test agent running on a host must never renumber its NIC.
	if link == nil {
		return fmt.Errorf("renumber: no network interface with MAC %s or %s", old, mac)
	}
	name := link.Attrs().Name
	if !bytes.Equal(link.Attrs().HardwareAddr, mac) {
		if err := setMAC(link, mac); err != nil {
			return fmt.Errorf("give %s the MAC %s: %w", name, mac, err)
		}
	}
	// Others go first: with the new address added beside the old one it
	// would be a secondary, removed with the primary unless the guest
	// sets promote_secondaries.
	have, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", name, err)
	}
	for _, a := range have {
		if !a.IP.Equal(addr.IP) {
			// EADDRNOTAVAIL: a secondary that went with its primary
			if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("remove %s from %s: %w", a.IPNet, name, err)
			}
		}
	}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", n.Address, name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	if n.Gateway != "" {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP(n.Gateway)}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("default route via %s: %w", n.Gateway, err)
		}
	}
	return nil
}

// setMAC changes a link's MAC, live where the driver allows it
// (virtio_net does), else with the link down for the change.
func setMAC(link netlink.Link, mac net.HardwareAddr) error {
	err := netlink.LinkSetHardwareAddr(link, mac)
	if !errors.Is(err, unix.EBUSY) {
		return err
	}
	if err := netlink.LinkSetDown(link); err != nil {
		return err
	}
	return netlink.LinkSetHardwareAddr(link, mac)
}
