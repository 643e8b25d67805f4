package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"
)

var (
	subnet24 = netip.MustParsePrefix("10.77.0.0/24")
	gw24     = netip.MustParseAddr("10.77.0.1")
)

// openSeeded is a store with the image and kernel VMs refer to.
func openSeeded(t *testing.T) *Store {
	t.Helper()
	s, _ := openTest(t)
	ctx := context.Background()
	if err := s.PutImage(ctx, Image{Name: "img", Path: "/i", SizeBytes: 1, Source: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutKernel(ctx, Kernel{Name: "krn", Dir: "/k", Release: "6.1", Source: "t"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func newVM(name string) *VM {
	return &VM{ID: "id-" + name, Name: name, Image: "img", Kernel: "krn", VMM: "qemu", VCPU: 2, MemoryMiB: 1024,
		DiskBytes: 8 << 30, MAC: "02:00:00:00:00:01", OverlayUUID: "ov-" + name, WorkUUID: "wk-" + name, State: StateCreating}
}

func reserve(t *testing.T, s *Store, name string, p netip.Prefix, gw netip.Addr) string {
	t.Helper()
	v := newVM(name)
	if err := s.ReserveVM(context.Background(), v, p, gw); err != nil {
		t.Fatalf("ReserveVM %s: %v", name, err)
	}
	return v.IP
}

func TestReserveVMLowestFreeAddress(t *testing.T) {
	tests := []struct {
		name   string
		subnet string
		gw     string
		want   []string // addresses handed out in order, then ErrNoAddress
	}{
		{"/29 skips network, gateway and broadcast", "10.0.0.0/29", "10.0.0.1",
			[]string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}},
		{"/30 has one guest address", "192.168.5.4/30", "192.168.5.5", []string{"192.168.5.6"}},
		{"gateway in the middle is skipped", "10.1.0.0/29", "10.1.0.3",
			[]string{"10.1.0.1", "10.1.0.2", "10.1.0.4", "10.1.0.5", "10.1.0.6"}},
		{"unmasked prefix is masked", "10.2.0.5/29", "10.2.0.1",
			[]string{"10.2.0.2", "10.2.0.3", "10.2.0.4", "10.2.0.5", "10.2.0.6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openSeeded(t)
			p, gw := netip.MustParsePrefix(tt.subnet), netip.MustParseAddr(tt.gw)
			var got []string
			for i := range tt.want {
				got = append(got, reserve(t, s, fmt.Sprintf("vm%d", i), p, gw))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("addresses = %v, want %v", got, tt.want)
			}
			err := s.ReserveVM(context.Background(), newVM("overflow"), p, gw)
			if !errors.Is(err, ErrNoAddress) {
				t.Fatalf("ReserveVM on a full subnet = %v, want ErrNoAddress", err)
			}
			if _, err := s.GetVM(context.Background(), "overflow"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("failed reservation left a row: %v", err)
			}
		})
	}
}

func TestDeleteVMReleasesNameAndAddress(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	a := reserve(t, s, "a", subnet24, gw24)
	b := reserve(t, s, "b", subnet24, gw24)
	c := reserve(t, s, "c", subnet24, gw24)
	if a != "10.77.0.2" || b != "10.77.0.3" || c != "10.77.0.4" {
		t.Fatalf("addresses %s %s %s", a, b, c)
	}
	if err := s.DeleteVM(ctx, "id-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVM(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetVM after delete = %v, want ErrNotFound", err)
	}
	// The freed address is the lowest free one, and the name is free again.
	if ip := reserve(t, s, "d", subnet24, gw24); ip != b {
		t.Fatalf("next address after delete = %s, want reused %s", ip, b)
	}
	if ip := reserve(t, s, "b", subnet24, gw24); ip != "10.77.0.5" {
		t.Fatalf("re-created b got %s, want 10.77.0.5", ip)
	}
	if err := s.DeleteVM(ctx, "no-such-id"); err != nil {
		t.Fatalf("DeleteVM of a missing id = %v, want nil", err)
	}
}

func TestReserveVMNameConflicts(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	reserve(t, s, "beta-sandbox", subnet24, gw24)
	reserve(t, s, "beta", subnet24, gw24) // a prefix of another name is a different name
	reserve(t, s, "bet", subnet24, gw24)

	dup := newVM("beta")
	dup.ID = "another-id"
	err := s.ReserveVM(ctx, dup, subnet24, gw24)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate name = %v, want ErrConflict", err)
	}
	dupID := newVM("gamma")
	dupID.ID = "id-beta"
	if err := s.ReserveVM(ctx, dupID, subnet24, gw24); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id = %v, want ErrConflict", err)
	}
	// Conflicts lease nothing: the next VM gets the next address.
	if ip := reserve(t, s, "delta", subnet24, gw24); ip != "10.77.0.5" {
		t.Fatalf("address after conflicts = %s, want 10.77.0.5", ip)
	}
	vms, err := s.ListVMs(ctx)
	if err != nil || len(vms) != 4 {
		t.Fatalf("ListVMs = %d VMs, %v; want 4", len(vms), err)
	}
}

func TestReserveVMUnknownImageRefused(t *testing.T) {
	s := openSeeded(t)
	v := newVM("orphan")
	v.Image = "no-such-image"
	if err := s.ReserveVM(context.Background(), v, subnet24, gw24); err == nil {
		t.Fatal("ReserveVM accepted a VM whose image does not exist (foreign keys off?)")
	}
}

func TestReserveVMConcurrent(t *testing.T) {
	tests := []struct {
		subnet string
		ok     int // addresses available
	}{
		{"10.9.0.0/28", 10}, // 13 free: every create succeeds
		{"10.9.0.0/29", 5},  // 5 free: half must fail with ErrNoAddress
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			ctx := context.Background()
			s := openSeeded(t)
			p := netip.MustParsePrefix(tt.subnet)
			gw := p.Addr().Next()
			const n = 10
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = s.ReserveVM(ctx, newVM(fmt.Sprintf("c%d", i)), p, gw)
				}()
			}
			close(start)
			wg.Wait()
			okCount := 0
			for i, err := range errs {
				switch {
				case err == nil:
					okCount++
				case errors.Is(err, ErrNoAddress):
				default:
					t.Errorf("goroutine %d: unexpected error %v", i, err)
				}
			}
			if okCount != tt.ok {
				t.Errorf("%d reservations succeeded, want %d", okCount, tt.ok)
			}
			vms, err := s.ListVMs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]string{}
			for _, v := range vms {
				a := netip.MustParseAddr(v.IP)
				if !p.Contains(a) || a == gw || a == p.Addr() {
					t.Errorf("%s leased bad address %s", v.Name, v.IP)
				}
				if other, dup := seen[v.IP]; dup {
					t.Errorf("%s and %s share %s", v.Name, other, v.IP)
				}
				seen[v.IP] = v.Name
			}
			if len(vms) != tt.ok {
				t.Errorf("%d rows, want %d", len(vms), tt.ok)
			}
		})
	}
}

func TestGetVM(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	v := newVM("web")
	v.LastError = "previous boot failed"
	if err := s.ReserveVM(ctx, v, subnet24, gw24); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"web", "id-web"} {
		got, err := s.GetVM(ctx, key)
		if err != nil {
			t.Fatalf("GetVM(%q): %v", key, err)
		}
		if got.CreatedAt.UnixNano() != v.CreatedAt.UnixNano() || got.UpdatedAt.UnixNano() != v.UpdatedAt.UnixNano() {
			t.Fatalf("timestamps = %v/%v, want %v/%v", got.CreatedAt, got.UpdatedAt, v.CreatedAt, v.UpdatedAt)
		}
		got.CreatedAt, got.UpdatedAt = v.CreatedAt, v.UpdatedAt
		if !reflect.DeepEqual(got, *v) {
			t.Fatalf("GetVM(%q) = %+v\nwant %+v", key, got, *v)
		}
	}
	for _, key := range []string{"we", "web2", "", "id-"} {
		if _, err := s.GetVM(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetVM(%q) = %v, want ErrNotFound (exact match only)", key, err)
		}
	}
}

func TestSetVMStateAndListOrder(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	for _, name := range []string{"charlie", "alpha", "bravo"} {
		reserve(t, s, name, subnet24, gw24)
		time.Sleep(2 * time.Millisecond) // distinct created_at
	}
	before, _ := s.GetVM(ctx, "alpha")
	if err := s.SetVMState(ctx, "id-alpha", StateFailed, "boot timed out"); err != nil {
		t.Fatal(err)
	}
	after, err := s.GetVM(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if after.State != StateFailed || after.LastError != "boot timed out" || !after.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("after SetVMState: state=%q err=%q updated %v (before %v)", after.State, after.LastError, after.UpdatedAt, before.UpdatedAt)
	}
	if err := s.SetVMState(ctx, "id-alpha", StateRunning, ""); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetVM(ctx, "alpha"); v.State != StateRunning || v.LastError != "" {
		t.Fatalf("clearing the error: state=%q err=%q", v.State, v.LastError)
	}
	if err := s.SetVMState(ctx, "missing", StateRunning, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetVMState on a missing id = %v, want ErrNotFound", err)
	}
	if err := s.SetVMState(ctx, "alpha", StateRunning, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetVMState by name = %v, want ErrNotFound (it takes ids)", err)
	}
	vms, err := s.ListVMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vms {
		names = append(names, v.Name)
	}
	if want := []string{"charlie", "alpha", "bravo"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ListVMs order = %v, want creation order %v", names, want)
	}
}
