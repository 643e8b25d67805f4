package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/hostnet"
)

type fakeVMs struct {
	vms      []VM
	busy     []string
	held     int // HoldReservations calls not yet released
	listErrs error
}

func (f *fakeVMs) NetworkVMs(context.Context) ([]VM, error) { return f.vms, f.listErrs }

func (f *fakeVMs) HoldReservations(context.Context) ([]string, func(), error) {
	f.held++
	return f.busy, func() { f.held-- }, nil
}

func newService(t *testing.T, vms *fakeVMs) (*Service, *hostnet.Fake, string) {
	t.Helper()
	n := hostnet.NewFake(netip.MustParsePrefix("10.99.0.0/24"))
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	return New(Deps{Bridge: "fake0", Net: n, VMs: vms, SSHConfig: cfg, IdentityFile: "/id", KnownHosts: "/kh"}), n, cfg
}

func TestRefreshFollowsRunningVMsOnlyAfterStart(t *testing.T) {
	vms := &fakeVMs{vms: []VM{{Name: "Dev", IP: "10.99.0.2", Running: true}, {Name: "off", IP: "10.99.0.3"}, {Name: "new"}}}
	s, n, cfg := newService(t, vms)
	s.Refresh()
	if _, err := os.Stat(cfg); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Refresh before Start wrote ssh_config (%v)", err)
	}
	stop, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !n.Bridge {
		t.Error("a running VM at start should bring the bridge back")
	}
	if a, ok := s.lookup("dev"); !ok || a != netip.MustParseAddr("10.99.0.2") {
		t.Errorf("lookup(dev) = %v %v, want the running VM's address (names are lower-cased)", a, ok)
	}
	if _, ok := s.lookup("off"); ok {
		t.Error("a stopped VM answers DNS")
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "10.99.0.2") || !strings.Contains(string(b), "10.99.0.3") || strings.Contains(string(b), "Host new") {
		t.Errorf("ssh_config lists every VM with an address and no other:\n%s", b)
	}
	vms.vms = vms.vms[1:]
	s.Refresh()
	if _, ok := s.lookup("dev"); ok {
		t.Error("a deleted VM still answers DNS after Refresh")
	}
}

func TestTeardownRefusesWhileVMsUseTheNetwork(t *testing.T) {
	vms := &fakeVMs{busy: []string{"dev (running)"}}
	s, n, _ := newService(t, vms)
	must(t, n.EnsureBridge(context.Background()))
	_, err := s.Teardown(context.Background())
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeConflict || !strings.Contains(ae.Message, "dev (running)") {
		t.Fatalf("Teardown = %v, want a conflict naming the VM", err)
	}
	if !n.Bridge {
		t.Error("a refused teardown removed the bridge")
	}
	if vms.held != 0 {
		t.Error("reservations still held after Teardown returned")
	}
	vms.busy = nil
	res, err := s.Teardown(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n.Bridge || len(res.Removed) == 0 {
		t.Errorf("teardown left the bridge or reported nothing removed: %+v", res)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
