package store

import (
	"context"
	"errors"
	"testing"
)

func TestNetPolicyKeptAndDeletedWithVM(t *testing.T) {
	ctx := context.Background()
	s := openSeeded(t)
	vm := newVM("np")
	if err := s.ReserveVM(ctx, vm, subnet24, gw24); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetNetPolicy(ctx, vm.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no policy yet: err = %v, want ErrNotFound", err)
	}
	for _, p := range []string{`{"mode":"isolated"}`, `{"mode":"nat"}`} {
		if err := s.PutNetPolicy(ctx, vm.ID, p); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetNetPolicy(ctx, vm.ID); err != nil || got != p {
			t.Fatalf("GetNetPolicy = %q, %v; want %q", got, err, p)
		}
	}
	if p, err := s.GetPorts(ctx, vm.ID); err != nil || p != "" {
		t.Fatalf("ports before any = %q, %v", p, err)
	}
	if err := s.PutPorts(ctx, vm.ID, `{"auto":true}`); err != nil {
		t.Fatal(err)
	}
	if p, err := s.GetPorts(ctx, vm.ID); err != nil || p != `{"auto":true}` {
		t.Fatalf("ports = %q, %v", p, err)
	}
	if got, _ := s.GetNetPolicy(ctx, vm.ID); got != `{"mode":"nat"}` {
		t.Fatalf("PutPorts changed the policy: %q", got)
	}
	if err := s.DeleteVM(ctx, vm.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetNetPolicy(ctx, vm.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: err = %v, want ErrNotFound", err)
	}
}
