package fake

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/vmm"
)

func testSpec(t *testing.T) vmm.Spec {
	return vmm.Spec{ID: "vm1", Dir: t.TempDir(), VCPU: 2, MemoryMiB: 1024,
		Disks: []vmm.Disk{{ID: "root", Path: "/r"}, {ID: "work", Path: "/w"}}}
}

func connect(t *testing.T, m vmm.Machine) *agentclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := m.DialAgent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := agentclient.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPauseStallsAgentUntilResume(t *testing.T) {
	d := New()
	m, err := d.Start(context.Background(), testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	c := connect(t, m)
	ctx := context.Background()
	s := m.(vmm.Snapshotter)
	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	// A request on the open session stalls.
	pinged := make(chan error, 1)
	go func() { _, err := c.Ping(ctx); pinged <- err }()
	select {
	case err := <-pinged:
		t.Fatalf("ping answered while paused: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	// A new dial waits for Resume or its context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := m.DialAgent(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DialAgent on a paused machine: %v, want a deadline error", err)
	}
	if err := s.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Resume(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	select {
	case err := <-pinged:
		if err != nil {
			t.Fatalf("ping after resume: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ping still stalled after Resume")
	}
	connect(t, m)
	if d.Pauses != 2 || d.Resumes != 2 {
		t.Errorf("counts: pauses %d resumes %d", d.Pauses, d.Resumes)
	}
}

func TestSaveStateAndRestore(t *testing.T) {
	d := New()
	spec := testSpec(t)
	m, err := d.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := m.(vmm.Snapshotter)
	dir := t.TempDir()
	if _, err := s.SaveState(ctx, dir); err == nil || !strings.Contains(err.Error(), "pause it first") {
		t.Fatalf("SaveState of a running machine: %v", err)
	}
	s.Pause(ctx)
	st, err := s.SaveState(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Driver != "fake" || st.VMMVersion != VMMVersion || st.Bytes <= 0 {
		t.Errorf("saved state %+v", st)
	}
	if !m.(*Machine).Paused() {
		t.Error("machine not paused after SaveState")
	}
	m.Kill()

	spec.Restore = dir
	spec.Disks[0].Path = "/other" // paths may differ
	r, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Kill()
	rm := r.(*Machine)
	if !rm.Paused() || rm.RestoredFrom() != dir {
		t.Fatalf("restored machine paused=%v from %q", rm.Paused(), rm.RestoredFrom())
	}
	rm.Resume(ctx)
	if _, err := connect(t, r).Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if d.SaveStates != 2 || d.Restores != 1 || d.Starts != 2 {
		t.Errorf("counts: saves %d restores %d starts %d", d.SaveStates, d.Restores, d.Starts)
	}
}

func TestRestoreRefusesBadState(t *testing.T) {
	d := New()
	ctx := context.Background()
	spec := testSpec(t)
	m, _ := d.Start(ctx, spec)
	m.(vmm.Snapshotter).Pause(ctx)
	good := t.TempDir()
	if _, err := m.(vmm.Snapshotter).SaveState(ctx, good); err != nil {
		t.Fatal(err)
	}
	m.Kill()

	corrupt := t.TempDir()
	os.WriteFile(filepath.Join(corrupt, StateFile), []byte("{\"format\": \"banger-fa"), 0o600)

	for _, tt := range []struct {
		name, dir, want string
		edit            func(*vmm.Spec)
	}{
		{"missing", t.TempDir(), "no saved state", nil},
		{"corrupt", corrupt, "corrupt or truncated", nil},
		{"memory", good, "the spec asks for 2 vCPUs and 512 MiB", func(s *vmm.Spec) { s.MemoryMiB = 512 }},
		{"disks", good, "has disks [root work], the spec has [root]", func(s *vmm.Spec) { s.Disks = s.Disks[:1] }},
		{"net", good, "net=false, the spec has net=true", func(s *vmm.Spec) { s.Net = &vmm.NetIface{TAP: "t"} }},
	} {
		s := testSpec(t)
		s.Restore = tt.dir
		if tt.edit != nil {
			tt.edit(&s)
		}
		before := d.Running()
		_, err := d.Start(ctx, s)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if d.Running() != before {
			t.Errorf("%s: a failed restore left a machine running", tt.name)
		}
	}

	d.SaveErr = errors.New("disk full")
	m2, _ := d.Start(ctx, spec)
	defer m2.Kill()
	m2.(vmm.Snapshotter).Pause(ctx)
	bad := t.TempDir()
	if _, err := m2.(vmm.Snapshotter).SaveState(ctx, bad); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("SaveState with SaveErr: %v", err)
	}
	s := testSpec(t)
	s.Restore = bad
	if _, err := d.Start(ctx, s); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("restore of a failed save: %v", err)
	}
}
