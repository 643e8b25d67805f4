package cli

import (
	"testing"

	"github.com/banger-dev/banger/internal/api"
)

func TestVMStopAndStartFlagsReachRunF(t *testing.T) {
	got, err := parseOnly(t, newVMStopCmd, "--save", "dev")
	if err != nil || got == nil || got.Name != "dev" || !got.Save {
		t.Fatalf("stop --save: %+v %v", got, err)
	}
	got, err = parseOnly(t, newVMStopCmd, "dev")
	if err != nil || got == nil || got.Save {
		t.Fatalf("stop: %+v %v", got, err)
	}
	st, err := parseOnly(t, newVMStartCmd, "dev", "--cold")
	if err != nil || st == nil || st.Name != "dev" || !st.Cold {
		t.Fatalf("start --cold: %+v %v", st, err)
	}
	for _, args := range [][]string{{}, {"a", "b"}} {
		got, err := parseOnly(t, newVMStopCmd, args...)
		wantUsage(t, args, got, err)
	}
}

func TestVMSnapshotFlagsReachRunF(t *testing.T) {
	c, err := parseOnly(t, newVMSnapshotCreateCmd, "dev")
	if err != nil || c == nil || c.Params != (api.SnapshotParams{Name: "dev"}) {
		t.Fatalf("create dev: %+v %v", c, err)
	}
	c, err = parseOnly(t, newVMSnapshotCreateCmd, "dev", "before", "--json")
	if err != nil || c == nil || c.Params != (api.SnapshotParams{Name: "dev", Snapshot: "before"}) || !c.JSON {
		t.Fatalf("create dev before: %+v %v", c, err)
	}
	r, err := parseOnly(t, newVMSnapshotRestoreCmd, "--force", "dev", "before")
	if err != nil || r == nil || r.Params != (api.SnapshotParams{Name: "dev", Snapshot: "before", Force: true}) {
		t.Fatalf("restore: %+v %v", r, err)
	}
	rm, err := parseOnly(t, newVMSnapshotRmCmd, "dev", "before")
	if err != nil || rm == nil || rm.Params != (api.SnapshotParams{Name: "dev", Snapshot: "before"}) {
		t.Fatalf("rm: %+v %v", rm, err)
	}
	l, err := parseOnly(t, newVMSnapshotListCmd, "dev", "--json")
	if err != nil || l == nil || l.Name != "dev" || !l.JSON {
		t.Fatalf("ls: %+v %v", l, err)
	}
	usage := [][]string{{}, {"dev", "Bad_Name"}, {"dev", "a", "b"}}
	for _, args := range usage {
		got, err := parseOnly(t, newVMSnapshotCreateCmd, args...)
		wantUsage(t, args, got, err)
	}
	for _, args := range [][]string{{"dev"}, {"dev", "x-"}} {
		got, err := parseOnly(t, newVMSnapshotRestoreCmd, args...)
		wantUsage(t, args, got, err)
		got, err = parseOnly(t, newVMSnapshotRmCmd, args...)
		wantUsage(t, args, got, err)
	}
}
