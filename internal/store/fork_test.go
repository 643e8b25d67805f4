package store

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

// All children of a fork or none: a name in use refuses the whole set,
// leaving neither rows nor pending marks.
func TestReserveForksAllOrNothing(t *testing.T) {
	s := openSeeded(t)
	ctx := context.Background()
	reserve(t, s, "dev", subnet24, gw24)
	reserve(t, s, "try-2", subnet24, gw24)
	free, err := s.FreeAddresses(ctx, subnet24, gw24)
	if err != nil || free != 253-2 {
		t.Fatalf("free = %d %v, want 251", free, err)
	}
	kids := []*VM{newVM("try-1"), newVM("try-2"), newVM("try-3")}
	if err := s.ReserveForks(ctx, "id-dev", kids, subnet24, gw24); !errors.Is(err, ErrConflict) {
		t.Fatalf("reserve with a taken name: %v", err)
	}
	if _, err := s.GetVM(ctx, "try-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("try-1 recorded after a refused fork: %v", err)
	}
	if p, _ := s.PendingForks(ctx); len(p) != 0 {
		t.Fatalf("pending after a refused fork: %v", p)
	}
	kids[1] = newVM("try-4")
	if err := s.ReserveForks(ctx, "id-dev", kids, subnet24, gw24); err != nil {
		t.Fatal(err)
	}
	ips := map[string]bool{}
	for _, k := range kids {
		ips[k.IP] = true
	}
	if len(ips) != 3 {
		t.Fatalf("children share addresses: %v", ips)
	}
	p, err := s.PendingForks(ctx)
	if err != nil || len(p) != 3 || !p["id-try-1"] {
		t.Fatalf("pending %v %v", p, err)
	}
	if err := s.ForkDone(ctx, "id-try-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVM(ctx, "id-try-3"); err != nil { // cascades
		t.Fatal(err)
	}
	if p, _ := s.PendingForks(ctx); len(p) != 1 || !p["id-try-4"] {
		t.Fatalf("pending after done + delete: %v", p)
	}
}

func TestReserveForksFullSubnet(t *testing.T) {
	s := openSeeded(t)
	ctx := context.Background()
	tiny := netip.MustParsePrefix("10.9.0.0/30") // one usable address beside the gateway
	gw := netip.MustParseAddr("10.9.0.1")
	if free, _ := s.FreeAddresses(ctx, tiny, gw); free != 1 {
		t.Fatalf("free %d, want 1", free)
	}
	if err := s.ReserveForks(ctx, "p", []*VM{newVM("a"), newVM("b")}, tiny, gw); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("two children in one free address: %v", err)
	}
	if vms, _ := s.ListVMs(ctx); len(vms) != 0 {
		t.Fatalf("rows left: %v", vms)
	}
}
