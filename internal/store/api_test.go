package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAPIKeysPutListTouchDelete(t *testing.T) {
	s := openSeeded(t)
	ctx := context.Background()
	k := APIKey{Name: "ci", Hash: []byte{1, 2, 3}, Prefix: "bgr_ab", CreatedAt: time.Unix(10, 0)}
	if err := s.PutAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIKey(ctx, k); !errors.Is(err, ErrConflict) {
		t.Fatalf("same name again: %v, want ErrConflict", err)
	}
	k2 := APIKey{Name: "other", Hash: []byte{1, 2, 3}, CreatedAt: time.Unix(11, 0)}
	if err := s.PutAPIKey(ctx, k2); !errors.Is(err, ErrConflict) {
		t.Fatalf("same hash again: %v, want ErrConflict", err)
	}
	if err := s.TouchAPIKey(ctx, "ci", time.Unix(20, 0)); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAPIKeys(ctx)
	if err != nil || len(list) != 1 || list[0].Prefix != "bgr_ab" || !list[0].LastUsed.Equal(time.Unix(20, 0)) {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := s.DeleteAPIKey(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAPIKey(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestSandboxesPutGetDeadlineCascade(t *testing.T) {
	s := openSeeded(t)
	ctx := context.Background()
	reserve(t, s, "sbx", subnet24, gw24)
	id := newVM("sbx").ID
	sb := Sandbox{VMID: id, Template: "base", Metadata: map[string]string{"app": "x"}, AutoPause: true,
		Deadline: time.Unix(100, 0), StartedAt: time.Unix(50, 0)}
	if err := s.PutSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSandbox(ctx, id)
	if err != nil || got.Metadata["app"] != "x" || len(got.EnvVars) != 0 || !got.AutoPause || !got.Deadline.Equal(time.Unix(100, 0)) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := s.SetSandboxDeadline(ctx, id, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSandbox(ctx, id); !got.Deadline.IsZero() {
		t.Fatalf("deadline not cleared: %v", got.Deadline)
	}
	if err := s.SetSandboxDeadline(ctx, "nope", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if err := s.DeleteVM(ctx, id); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSandboxes(ctx); len(list) != 0 {
		t.Fatalf("deleting the VM left its sandbox: %+v", list)
	}
	if _, err := s.GetSandbox(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}
