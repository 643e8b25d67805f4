package proto

import (
	"fmt"
	"net"
	"regexp"
	"strings"
)

// OpReidentify gives a running guest a new identity: a fork (the daemon's
// `vm fork`) continues the parent's memory, so it wakes up with the
// parent's hostname, address, MAC, SSH host keys and machine-id, and
// must take its own before anything else talks to it.
const OpReidentify = "reidentify"

// ReidentifyParams is the child's identity. The agent applies all of it
// (ReidentifyResult says what it did to sshd); Reseed and SetTime are
// separate ops the host sends as after any restore.
type ReidentifyParams struct {
	Hostname string `json:"hostname"`
	// OldMAC is the NIC's MAC as the guest has it (the parent's): the
	// link to renumber. Net.MAC is the one it gets.
	OldMAC string    `json:"old_mac"`
	Net    *GuestNet `json:"net"`
	// SSHHostKeys replace the guest's host keys (file names under
	// /etc/ssh, as GuestConfig.SSHHostKeys); sshd is made to load them.
	SSHHostKeys map[string]string `json:"ssh_host_keys"`
	// MachineID is written to /etc/machine-id: 32 lowercase hex digits.
	MachineID string `json:"machine_id"`
}

// ReidentifyResult reports what the agent did beyond writing files.
type ReidentifyResult struct {
	// SSHD is "reloaded" (the listening sshd got SIGHUP and re-executes
	// itself with the new keys) or "not running".
	SSHD string `json:"sshd"`
}

var (
	hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	machineID = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// Check refuses params the agent cannot apply whole, before it changes
// anything.
func (p ReidentifyParams) Check() error {
	if !hostLabel.MatchString(p.Hostname) {
		return fmt.Errorf("reidentify: hostname %q is not a DNS label", p.Hostname)
	}
	if !machineID.MatchString(p.MachineID) {
		return fmt.Errorf("reidentify: machine-id %q is not 32 lowercase hex digits", p.MachineID)
	}
	if p.Net == nil {
		return fmt.Errorf("reidentify: no network configuration")
	}
	for what, mac := range map[string]string{"old mac": p.OldMAC, "mac": p.Net.MAC} {
		if _, err := net.ParseMAC(mac); err != nil {
			return fmt.Errorf("reidentify: %s %q: %v", what, mac, err)
		}
	}
	if _, _, err := net.ParseCIDR(p.Net.Address); err != nil {
		return fmt.Errorf("reidentify: address %q: %v", p.Net.Address, err)
	}
	if p.Net.Gateway != "" && net.ParseIP(p.Net.Gateway) == nil {
		return fmt.Errorf("reidentify: gateway %q is not an address", p.Net.Gateway)
	}
	if len(p.SSHHostKeys) == 0 {
		return fmt.Errorf("reidentify: no ssh host keys (the parent's would stay)")
	}
	for name := range p.SSHHostKeys {
		if strings.ContainsRune(name, '/') || !strings.HasPrefix(name, "ssh_host_") {
			return fmt.Errorf("reidentify: ssh host key %q: not a host key file name", name)
		}
	}
	return nil
}
