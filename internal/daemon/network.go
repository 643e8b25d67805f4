package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/store"
)

// `banger network show` and `banger network teardown`: everything banger
// added to the host's network, listed from the host itself (links by
// their "banger" alias, the nft table, the forwarding marker, resolved's
// link settings) plus the daemon's DNS listener.

func init() {
	handlerSets = append(handlerSets, func(d *Daemon) map[string]rpc.Handler {
		return map[string]rpc.Handler{
			api.MethodNetworkShow: func(ctx context.Context, c *rpc.Call) (any, error) {
				return d.networkState(ctx)
			},
			api.MethodNetworkTeardown: d.handleNetworkTeardown,
		}
	})
}

func (d *Daemon) networkState(ctx context.Context) (api.NetworkState, error) {
	out := api.NetworkState{
		Bridge: d.cfg.Network.Bridge, Subnet: d.net.Subnet().String(), Gateway: d.net.Gateway().String(),
		Objects: []api.NetworkObject{},
	}
	st, err := d.net.Show(ctx)
	if err != nil {
		return out, err
	}
	for _, o := range st.Objects {
		out.Objects = append(out.Objects, api.NetworkObject{Kind: o.Kind, Name: o.Name, Detail: o.Detail})
	}
	if s := netOf(d); s != nil && s.dns.Addr().IsValid() {
		out.DNS = s.dns.Addr().String()
		out.Objects = append(out.Objects, api.NetworkObject{Kind: "dns", Name: "udp+tcp " + out.DNS,
			Detail: fmt.Sprintf("banger's DNS server (bangerd, pid %d); guests reach it on %s:53", os.Getpid(), out.Gateway)})
	}
	return out, nil
}

// handleNetworkTeardown removes everything when no VM runs. Holding
// reserveMu keeps new VMs from being reserved meanwhile; a VM reserved
// earlier is seen in the store as creating.
func (d *Daemon) handleNetworkTeardown(ctx context.Context, c *rpc.Call) (any, error) {
	d.reserveMu.Lock()
	defer d.reserveMu.Unlock()
	vms, err := d.store.ListVMs(ctx)
	if err != nil {
		return nil, err
	}
	var busy []string
	for _, vm := range vms {
		switch {
		case d.instance(vm.ID) != nil,
			vm.State == store.StateCreating, vm.State == store.StateStarting,
			vm.State == store.StateRunning, vm.State == store.StateStopping:
			busy = append(busy, vm.Name+" ("+vm.State+")")
		}
	}
	if len(busy) > 0 {
		return nil, conflict("%d VM(s) still use the network: %s; stop or delete them first (`banger vm stop NAME`)",
			len(busy), strings.Join(busy, ", "))
	}
	before, err := d.networkState(ctx)
	if err != nil {
		return nil, err
	}
	if s := netOf(d); s != nil {
		s.dns.Close()
	}
	ctx = context.WithoutCancel(ctx)
	terr := d.net.Teardown(ctx)
	after, err := d.networkState(ctx)
	if terr != nil {
		return nil, fmt.Errorf("network teardown: %w", terr)
	}
	if err != nil {
		return nil, err
	}
	left := map[string]bool{}
	for _, o := range after.Objects {
		left[o.Kind+" "+o.Name] = true
	}
	res := api.NetworkTeardown{Removed: []api.NetworkObject{}, Left: after.Objects}
	for _, o := range before.Objects {
		if !left[o.Kind+" "+o.Name] {
			res.Removed = append(res.Removed, o)
		}
	}
	d.log.Info("host change", "op", "network teardown", "removed", len(res.Removed), "left", len(res.Left))
	return res, nil
}
