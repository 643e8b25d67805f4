package cli

import (
	"fmt"

	"github.com/banger-dev/banger/internal/api"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// netFlags are the network policy flags of vm create, vm run and vm set.
type netFlags struct {
	mode        string
	allow, deny []string
	group       string
	// publish (-p) and autoForward are create's and run's only.
	publish     []string
	autoForward bool
}

func (n *netFlags) register(fs *pflag.FlagSet, withGroup bool) {
	fs.StringVar(&n.mode, "net", "", `network mode: "nat" (the public internet; no private range or host LAN) or "isolated" (nothing leaves); default [network] default_policy`)
	fs.StringArrayVar(&n.allow, "allow-out", nil, "also reach this CIDR, address, CIDR:PORT or host:PORT (repeatable; wins over --deny-out)")
	fs.StringArrayVar(&n.deny, "deny-out", nil, "never reach this CIDR, address, CIDR:PORT or host:PORT (repeatable)")
	if withGroup { // create and run
		fs.StringVar(&n.group, "group", "", "guests of the same group reach each other (by default no guest reaches another)")
		fs.StringArrayVarP(&n.publish, "publish", "p", nil, "forward [ADDR:]HOSTPORT:GUESTPORT[/udp] from the host to the VM (repeatable; see `vm forward`)")
		fs.BoolVar(&n.autoForward, "auto-forward", false, "forward every TCP port the guest listens on to 127.0.0.1 (default [network] auto_forward)")
	}
}

func completeNetMode(cmd *cobra.Command) {
	cmd.RegisterFlagCompletionFunc("net", cobra.FixedCompletions([]string{api.NetNAT, api.NetIsolated}, cobra.ShellCompDirectiveNoFileComp))
}

func (n *netFlags) changed(cmd *cobra.Command) bool {
	fs := cmd.Flags()
	return fs.Changed("net") || fs.Changed("allow-out") || fs.Changed("deny-out") || fs.Changed("group")
}

func (n *netFlags) check() error {
	n.allow, n.deny = nonEmpty(n.allow), nonEmpty(n.deny) // --allow-out '' empties the list
	if n.mode != "" && n.mode != api.NetNAT && n.mode != api.NetIsolated {
		return usageError{fmt.Errorf("--net %q: want %q or %q", n.mode, api.NetNAT, api.NetIsolated)}
	}
	for _, r := range append(append([]string(nil), n.allow...), n.deny...) {
		if _, err := api.ParseNetRule(r); err != nil {
			return usageError{err}
		}
	}
	return nil
}

// policy is the create-time policy; nil when no flag was given (the
// daemon's default).
func (n *netFlags) policy(cmd *cobra.Command) (*api.NetPolicy, error) {
	if !n.changed(cmd) {
		return nil, nil
	}
	if err := n.check(); err != nil {
		return nil, err
	}
	p := &api.NetPolicy{Mode: n.mode, AllowOut: n.allow, DenyOut: n.deny, Group: n.group}
	if err := (api.NetPolicy{Mode: api.NetNAT, Group: n.group}).Validate(); err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// ports sets a create's forwards (-p) and auto-forward switch.
func (n *netFlags) ports(cmd *cobra.Command, p *api.CreateParams) error {
	for _, s := range n.publish {
		if _, err := api.ParseForward(s); err != nil {
			return usageError{err}
		}
	}
	if len(n.publish) == 0 && !cmd.Flags().Changed("auto-forward") {
		return nil
	}
	p.Ports = &api.CreatePorts{Forwards: n.publish}
	if cmd.Flags().Changed("auto-forward") {
		p.Ports.AutoForward = &n.autoForward
	}
	return nil
}

// setParams is vm set's change: only the flags given.
func (n *netFlags) setParams(cmd *cobra.Command, name string) (api.SetNetParams, error) {
	p := api.SetNetParams{Name: name}
	if err := n.check(); err != nil {
		return p, err
	}
	fs := cmd.Flags()
	if fs.Changed("net") {
		p.Mode = &n.mode
	}
	if fs.Changed("allow-out") {
		p.AllowOut = &n.allow
	}
	if fs.Changed("deny-out") {
		p.DenyOut = &n.deny
	}
	return p, nil
}

// netPolicyLine is a policy on one line, as vm show and vm set print it.
func netPolicyLine(p *api.NetPolicy) string {
	if p == nil {
		return "(default)"
	}
	s := p.Mode
	for _, r := range p.AllowOut {
		s += " allow " + r
	}
	for _, r := range p.DenyOut {
		s += " deny " + r
	}
	if p.Group != "" {
		s += " group " + p.Group
	}
	return s
}

func nonEmpty(rules []string) []string {
	out := []string{}
	for _, r := range rules {
		if r != "" {
			out = append(out, r)
		}
	}
	return out
}
