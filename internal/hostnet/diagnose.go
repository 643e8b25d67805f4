package hostnet

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// Read-only checks for `banger doctor` (run by `bangerd doctor`): none of them changes the host.

// CheckBridge says whether the configured bridge and subnet can be used:
// the bridge is banger's already, or its name is free and the subnet
// overlaps no host route.
func CheckBridge(cfg Config) (detail string, err error) {
	cfg = cfg.withDefaults()
	l, lerr := netlink.LinkByName(cfg.Bridge)
	switch {
	case lerr == nil && l.Type() == "bridge" && l.Attrs().Alias == Alias:
		return fmt.Sprintf("%s is banger's bridge (subnet %s)", cfg.Bridge, cfg.Subnet), nil
	case lerr == nil && l.Type() != "bridge":
		return "", fmt.Errorf("%s exists and is a %s, not a bridge", cfg.Bridge, l.Type())
	case lerr == nil:
		return "", fmt.Errorf("bridge %s exists and was not created by banger", cfg.Bridge)
	case !notFound(lerr):
		return "", lerr
	}
	if err := checkNoRouteClash(cfg.Subnet, -1); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (subnet %s) will be created when the first VM starts; no host route overlaps", cfg.Bridge, cfg.Subnet), nil
}

// CheckNFTables lists the ruleset's tables (root only).
func CheckNFTables() (detail string, err error) {
	c, err := nftables.New()
	if err != nil {
		return "", err
	}
	ok, err := findTable(c)
	if err != nil {
		return "", fmt.Errorf("nftables unusable: %w", err)
	}
	if ok {
		return "nf_tables works; table ip " + TableName + " present", nil
	}
	return "nf_tables works; table ip " + TableName + " not created yet", nil
}

// Forwarding describes net.ipv4.ip_forward.
func Forwarding() string {
	b, err := os.ReadFile(ipForward)
	if err != nil {
		return "unknown: " + err.Error()
	}
	if strings.TrimSpace(string(b)) == "1" {
		return "net.ipv4.ip_forward = 1"
	}
	return "net.ipv4.ip_forward = 0 (banger turns it on for the first VM and off again at teardown)"
}
