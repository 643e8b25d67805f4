package vms

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/store"
)

func newPolicyService(t *testing.T, netCfg config.Network) (*Service, *hostnet.Fake, store.VM) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(root, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.PutImage(ctx, store.Image{Name: "img", Path: "/i", SizeBytes: 1, Source: "t"})
	st.PutKernel(ctx, store.Kernel{Name: "k", Dir: "/k", Release: "6.1", Source: "t"})
	n := hostnet.NewFake(netip.MustParsePrefix("10.9.0.0/24"))
	cfg := config.Defaults()
	cfg.Network = netCfg
	s := New(Deps{Paths: config.Paths{StateDir: filepath.Join(root, "s"), RuntimeDir: filepath.Join(root, "r")},
		Net: n, Store: st, Config: cfg})
	vm := store.VM{ID: "abc123", Name: "dev", Image: "img", Kernel: "k", VMM: "qemu", VCPU: 1, MemoryMiB: 256, DiskBytes: 1,
		MAC: "52:54:00:00:00:01", OverlayUUID: "o", WorkUUID: "w", State: store.StateStopped}
	if err := st.ReserveVM(ctx, &vm, n.Subnet(), n.Gateway()); err != nil {
		t.Fatal(err)
	}
	return s, n, vm
}

func TestCreateNetPolicyDefaultsAndRefusals(t *testing.T) {
	s, _, _ := newPolicyService(t, config.Network{DefaultPolicy: "isolated", DefaultAllowOut: "10.1.0.0/16, pypi.org:443"})
	got, err := s.createNetPolicy(nil)
	if err != nil || got.Mode != api.NetIsolated || !slices.Equal(got.AllowOut, []string{"10.1.0.0/16", "pypi.org:443"}) {
		t.Fatalf("default = %+v, %v", got, err)
	}
	got, err = s.createNetPolicy(&api.NetPolicy{DenyOut: []string{"203.0.113.0/24"}, Group: "web"})
	if err != nil || got.Mode != api.NetIsolated || got.AllowOut != nil || got.Group != "web" {
		t.Fatalf("asked, empty mode = %+v, %v", got, err)
	}
	for _, bad := range []api.NetPolicy{{Mode: "open"}, {Mode: api.NetNAT, DenyOut: []string{"pypi.org"}}, {Mode: api.NetNAT, AllowOut: []string{"10.0.0.0/8:x"}}} {
		if _, err := s.createNetPolicy(&bad); !isInvalid(err) {
			t.Errorf("policy %+v: err = %v, want invalid", bad, err)
		}
	}
}

// vm set --net on a stopped VM records the policy; a refused change
// leaves the recorded one as it was.
func TestSetNetPolicyRecordsAndRefuses(t *testing.T) {
	ctx := context.Background()
	s, n, vm := newPolicyService(t, config.Network{})
	if p, _ := s.netPolicy(ctx, vm.ID); p.Mode != api.NetNAT {
		t.Fatalf("a VM without a recorded policy gets the default nat, got %+v", p)
	}
	iso := api.NetIsolated
	allow := []string{"10.1.2.0/24:5432", "pypi.org"}
	v, err := s.SetNetPolicy(ctx, api.SetNetParams{Name: "dev", Mode: &iso, AllowOut: &allow}, nil)
	if err != nil || v.Net == nil || v.Net.Mode != api.NetIsolated || !slices.Equal(v.Net.AllowOut, allow) {
		t.Fatalf("SetNetPolicy = %+v, %v", v.Net, err)
	}
	bad := []string{"nope"}
	if _, err := s.SetNetPolicy(ctx, api.SetNetParams{Name: "dev", DenyOut: &bad}, nil); !isInvalid(err) {
		t.Fatalf("bad rule: err = %v, want invalid", err)
	}
	if p, _ := s.netPolicy(ctx, vm.ID); p.Mode != api.NetIsolated || len(p.DenyOut) != 0 {
		t.Fatalf("a refused change altered the policy: %+v", p)
	}
	// Not running: nothing applied on the host.
	if _, ok := n.Guest(TAPName(vm.ID)); ok {
		t.Fatal("rules applied for a stopped VM")
	}
	// applyNet (what boot runs) turns the policy into the host's rules.
	if err := s.applyNet(ctx, vm); err != nil {
		t.Fatal(err)
	}
	g, ok := n.Guest(TAPName(vm.ID))
	want := hostnet.Egress{Isolated: true, Allow: []hostnet.Dest{{Prefix: netip.MustParsePrefix("10.1.2.0/24"), Port: 5432}}, DomainPorts: []uint16{0}}
	if !ok || g.MAC != vm.MAC || g.IP.String() != vm.IP || g.Egress.Isolated != want.Isolated ||
		!slices.Equal(g.Egress.Allow, want.Allow) || !slices.Equal(g.Egress.DomainPorts, want.DomainPorts) {
		t.Fatalf("applied %+v, want egress %+v", g, want)
	}
}

func isInvalid(err error) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == api.CodeInvalid
}
