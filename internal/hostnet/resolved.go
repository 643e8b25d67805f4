package hostnet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// systemd-resolved routing: where resolved serves the host, the `.vm`
// domain is routed to banger's DNS on the bridge link (a per-link DNS
// server and routing-only domain `~vm`, not a default route), so plain
// `ssh dev.vm` and `curl dev.vm` resolve. resolved forgets per-link
// settings when the link goes, and teardown reverts them explicitly.

// Replaced in tests.
var (
	resolvectlBin   = "resolvectl"
	resolvedSocket  = "/run/systemd/resolve/io.systemd.Resolve"
	initNetns       = "/proc/1/ns/net"
	resolvedTimeout = 10 * time.Second
)

// ResolvedStatus says whether systemd-resolved serves banger's network
// namespace, and if not, why.
func ResolvedStatus() (managed bool, why string) {
	if _, err := os.Stat(resolvedSocket); err != nil {
		return false, "systemd-resolved is not running"
	}
	if _, err := exec.LookPath(resolvectlBin); err != nil {
		return false, "resolvectl is not installed"
	}
	// resolved manages the links of the init namespace only: configuring
	// "our" link index from another namespace would hit a host link.
	var self, init unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &self); err != nil {
		return false, "cannot read this network namespace: " + err.Error()
	}
	if err := unix.Stat(initNetns, &init); err != nil {
		return false, "cannot compare with the init network namespace: " + err.Error()
	}
	if self.Dev != init.Dev || self.Ino != init.Ino {
		return false, "banger runs in a network namespace that systemd-resolved does not manage"
	}
	return true, "systemd-resolved manages this network namespace"
}

func resolvectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), resolvedTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, resolvectlBin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("resolvectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func resolvedServer(cfg Config) string {
	return fmt.Sprintf("%s:%d", GatewayOf(cfg.Subnet), cfg.DNSPort)
}

// resolvedRouted reports whether the bridge already routes ~vm to banger.
func resolvedRouted(cfg Config) bool {
	dom, err := resolvectl("domain", cfg.Bridge)
	if err != nil || !strings.Contains(dom, "~vm") {
		return false
	}
	srv, err := resolvectl("dns", cfg.Bridge)
	return err == nil && strings.Contains(srv, resolvedServer(cfg))
}

// routeResolved routes `.vm` to banger's DNS; applied reports whether it
// changed anything (so a failed ensure undoes only its own change).
func routeResolved(cfg Config) (applied bool, err error) {
	if ok, _ := ResolvedStatus(); !ok || resolvedRouted(cfg) {
		return false, nil
	}
	for _, args := range [][]string{
		{"dns", cfg.Bridge, resolvedServer(cfg)},
		{"domain", cfg.Bridge, "~vm"},
		{"default-route", cfg.Bridge, "false"},
	} {
		if _, err := resolvectl(args...); err != nil {
			resolvectl("revert", cfg.Bridge)
			return false, err
		}
	}
	return true, nil
}

// revertResolved drops banger's settings from the bridge link.
func revertResolved(cfg Config) error {
	if ok, _ := ResolvedStatus(); !ok || !resolvedRouted(cfg) {
		return nil
	}
	_, err := resolvectl("revert", cfg.Bridge)
	return err
}

func resolvedObject(cfg Config) (Object, bool) {
	if ok, _ := ResolvedStatus(); !ok || !resolvedRouted(cfg) {
		return Object{}, false
	}
	return Object{Kind: "resolved", Name: "~vm on " + cfg.Bridge, Detail: "systemd-resolved sends .vm queries to " + resolvedServer(cfg)}, true
}
