package doctor

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/config"
	bdns "github.com/banger-dev/banger/internal/dns"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/sshconfig"
)

// networkChecks are doctor's network findings; like the rest of doctor
// they only read.
func networkChecks(cfg config.Config, paths config.Paths) []Check {
	var out []Check
	add := func(status, name, detail, fix string) { out = append(out, Check{status, name, detail, fix}) }
	subnet, err := netip.ParsePrefix(cfg.Network.Subnet)
	if err != nil {
		return []Check{{"fail", "network", "network.subnet: " + err.Error(), "fix [network] subnet in config.toml"}}
	}
	hc := hostnet.Config{Bridge: cfg.Network.Bridge, Subnet: subnet.Masked(), DNSPort: cfg.Network.DNSPort, GuestsReachHost: cfg.Network.GuestsReachHost}
	gw := hostnet.GatewayOf(subnet)
	port := cfg.Network.DNSPort

	if os.Geteuid() == 0 {
		add("pass", "privileges", "root: host networking is done directly", "")
	} else if helper, err := hostnet.HelperPath(); err != nil {
		add("fail", "privileges", err.Error(), "")
	} else if sudoAllows(helper) {
		add("pass", "privileges", "sudo -n allows banger's network operations ("+helper+" priv ...)", "")
	} else {
		add("fail", "privileges", "not root, and sudo -n does not allow banger's network operations",
			"banger doctor --sudoers | sudo tee /etc/sudoers.d/banger && sudo chmod 0440 /etc/sudoers.d/banger")
	}
	if detail, err := hostnet.CheckBridge(hc); err != nil {
		add("fail", "bridge", err.Error(), "set another [network] bridge or subnet in config.toml")
	} else {
		add("pass", "bridge", detail, "")
	}
	if os.Geteuid() == 0 {
		if detail, err := hostnet.CheckNFTables(); err != nil {
			add("fail", "nftables", err.Error(), "modprobe nf_tables (kernel 5.x or later)")
		} else {
			add("pass", "nftables", detail, "")
		}
	}
	add("pass", "forwarding", hostnet.Forwarding(), "")
	if holder := bdns.PortHolder("udp", port); holder != "" && !strings.Contains(holder, "(bangerd)") {
		add("fail", "dns port", fmt.Sprintf("udp port %d is held by %s", port, holder), "stop it, or set [network] dns_port in config.toml to a free port")
	} else {
		add("pass", "dns port", fmt.Sprintf("banger's DNS on %s:%d (guests use %s:53)", gw, port, gw), "")
	}
	if ups, err := bdns.HostUpstreams(bdns.ResolvConf, gw); err != nil {
		add("fail", "upstream dns", err.Error(), "")
	} else {
		add("pass", "upstream dns", "names outside .vm go to "+strings.Join(ups, ", "), "")
	}
	if ok, why := hostnet.ResolvedStatus(); ok {
		add("pass", ".vm names", why+": banger routes .vm to its DNS on "+hc.Bridge, "")
	} else {
		add("warn", ".vm names", why+", so nothing routes .vm names to banger's DNS",
			fmt.Sprintf("`banger ssh-config --install` makes `ssh NAME.vm` work anyway (it names each VM's address); "+
				"for other tools ask banger's DNS directly (`dig @%s NAME.vm`) or forward .vm to %s#%d in your resolver (dnsmasq: server=/vm/%s#%d)",
				gw, gw, port, gw, port))
	}
	if home, err := os.UserHomeDir(); err == nil {
		user := filepath.Join(home, ".ssh", "config")
		if ok, err := sshconfig.Installed(user); err != nil {
			add("fail", "ssh-config", err.Error(), "")
		} else if ok {
			add("pass", "ssh-config", user+" includes "+sshconfig.BangerConfigPath(paths.ConfigDir), "")
		} else {
			add("warn", "ssh-config", user+" does not include banger's ssh_config", "`banger ssh-config --install` makes `ssh NAME.vm` work")
		}
	}
	return out
}

// sudoAllows asks sudo, without a password prompt, whether the helper's
// first operation is allowed.
func sudoAllows(helper string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "sudo", "-n", "-l", helper, "priv", hostnet.PrivOps[0]).Run() == nil
}
