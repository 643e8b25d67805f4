package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	bdns "github.com/banger-dev/banger/internal/dns"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/sshconfig"
	"github.com/spf13/cobra"
)

func init() { rootCommands = append(rootCommands, newNetworkCmd) }

func newNetworkCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "List or remove everything banger added to the host's network",
		Long: `banger adds to the host only: a bridge with the gateway address (and its
route), a TAP per running VM plus a small pool of ready ones, the nftables
table "banger" (guest NAT, guests' DNS on port 53 of the gateway), IPv4
forwarding when it was off, systemd-resolved routing of .vm where resolved
runs, and its DNS server on the gateway. All of it is set up when the first
VM starts.`,
	}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "List every host network object banger created",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.NetworkState
			if err := env.Client.Call(cmd.Context(), api.MethodNetworkShow, nil, &st, nil); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Out, st)
			}
			dns := st.DNS
			if dns == "" {
				dns = "not listening"
			}
			fmt.Fprintf(env.Out, "bridge %s · subnet %s · gateway %s · dns %s\n", st.Bridge, st.Subnet, st.Gateway, dns)
			if len(st.Objects) == 0 {
				fmt.Fprintln(env.Out, "banger has nothing on this host's network (the first VM start sets it up)")
				return nil
			}
			printObjects(env, st.Objects)
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	teardown := &cobra.Command{
		Use:   "teardown",
		Short: "Remove everything banger added to the host's network (no VM may be running)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res api.NetworkTeardown
			if err := env.Client.Call(cmd.Context(), api.MethodNetworkTeardown, nil, &res, nil); err != nil {
				return err
			}
			if len(res.Removed) == 0 {
				fmt.Fprintln(env.Out, "nothing to remove")
			} else {
				fmt.Fprintf(env.Out, "removed %d objects:\n", len(res.Removed))
				printObjects(env, res.Removed)
			}
			if len(res.Left) > 0 {
				fmt.Fprintf(env.Out, "could not remove %d objects:\n", len(res.Left))
				printObjects(env, res.Left)
				return exitError{ExitError}
			}
			return nil
		},
	}
	// priv is the privileged helper the daemon runs through `sudo -n`
	// when it is not root; see `banger doctor --sudoers`.
	priv := &cobra.Command{
		Use:    "priv OP",
		Short:  "Perform one privileged network operation (run by bangerd through sudo -n)",
		Hidden: true,
		Args:   exactArgs(1, "one operation"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return hostnet.PrivMain(args[0], env.In, env.Out)
		},
	}
	cmd.AddCommand(show, teardown, priv)
	return cmd
}

func printObjects(env *Env, objs []api.NetworkObject) {
	tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tDETAIL")
	for _, o := range objs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Kind, o.Name, o.Detail)
	}
	tw.Flush()
}

// networkChecks are doctor's network findings; like the rest of doctor
// they only read.
func networkChecks(cfg config.Config, paths config.Paths) []check {
	var out []check
	add := func(status, name, detail, fix string) { out = append(out, check{status, name, detail, fix}) }
	subnet, err := netip.ParsePrefix(cfg.Network.Subnet)
	if err != nil {
		return []check{{"fail", "network", "network.subnet: " + err.Error(), "fix [network] subnet in config.toml"}}
	}
	hc := hostnet.Config{Bridge: cfg.Network.Bridge, Subnet: subnet.Masked(), DNSPort: cfg.Network.DNSPort, GuestsReachHost: cfg.Network.GuestsReachHost}
	gw := hostnet.GatewayOf(subnet)
	port := cfg.Network.DNSPort

	if os.Geteuid() == 0 {
		add("pass", "privileges", "root: host networking is done directly", "")
	} else if helper, err := bangerPath(); err != nil {
		add("fail", "privileges", err.Error(), "")
	} else if sudoAllows(helper) {
		add("pass", "privileges", "sudo -n allows banger's network operations ("+helper+" network priv ...)", "")
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
	if user, err := userSSHConfig(); err == nil {
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

// bangerPath is this binary, which is also the privileged helper.
func bangerPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if p, err := filepath.EvalSymlinks(self); err == nil {
		self = p
	}
	return self, nil
}

// sudoAllows asks sudo, without a password prompt, whether the helper's
// first operation is allowed.
func sudoAllows(helper string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "sudo", "-n", "-l", helper, "network", "priv", hostnet.PrivOps[0]).Run() == nil
}

// printSudoers writes the snippet for `banger doctor --sudoers`.
func printSudoers(env *Env) error {
	helper, err := bangerPath()
	if err != nil {
		return err
	}
	name := os.Getenv("SUDO_USER")
	if name == "" {
		u, err := user.Current()
		if err != nil {
			return err
		}
		name = u.Username
	}
	// A helper the user can replace would hand them root.
	if fi, err := os.Stat(helper); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (st.Uid != 0 || fi.Mode().Perm()&0o022 != 0) {
			fmt.Fprintf(env.Out, "# WARNING: %s is not owned by root or is writable by others, so this snippet\n# would let anyone who can replace it run code as root. Install banger root-owned\n# first (`sudo make install`: /usr/local/bin) and run `/usr/local/bin/banger doctor --sudoers`.\n", helper)
		}
	}
	fmt.Fprint(env.Out, hostnet.Sudoers(name, helper))
	return nil
}
