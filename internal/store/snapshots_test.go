package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSnapshotsPutListDeleteAndCascade(t *testing.T) {
	s := openSeeded(t)
	ctx := context.Background()
	reserve(t, s, "dev", subnet24, gw24)
	id := newVM("dev").ID
	sn := Snapshot{VMID: id, Name: "a", CreatedAt: time.Unix(10, 0), Bytes: 42, VMM: "qemu", VMMVersion: "7.2", BangerVersion: "v1", Layout: "l"}
	if err := s.PutSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSnapshot(ctx, sn); !errors.Is(err, ErrConflict) {
		t.Fatalf("second put: %v, want ErrConflict", err)
	}
	sn.Name, sn.CreatedAt = "b", time.Unix(20, 0)
	if err := s.PutSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSnapshot(ctx, id, "a")
	if err != nil || got.Bytes != 42 || got.VMMVersion != "7.2" || !got.CreatedAt.Equal(time.Unix(10, 0)) {
		t.Fatalf("get: %+v %v", got, err)
	}
	list, err := s.ListSnapshots(ctx, id)
	if err != nil || len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := s.DeleteSnapshot(ctx, id, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSnapshot(ctx, id, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.GetSnapshot(ctx, id, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := s.DeleteVM(ctx, id); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListSnapshots(ctx, ""); len(list) != 0 {
		t.Fatalf("deleting the VM left its snapshots: %+v", list)
	}
}
