package firecracker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/firecracker/fakefc"
)

func state(t *testing.T, m vmm.Machine) string {
	t.Helper()
	info, err := m.(*machine).api.Info(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// since returns the requests recorded after the first n.
func since(t *testing.T, f fake, n int) []fakefc.Request {
	return f.requests(t)[n:]
}

func TestPauseSaveRestoreResume(t *testing.T) {
	f := newFake(t)
	d := f.driver(Options{})
	spec := testSpec(t)
	m := start(t, d, spec)
	s := m.(vmm.Snapshotter)
	ctx := ctxFor(t, 10*time.Second)

	if _, err := s.SaveState(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "pause it first") {
		t.Fatalf("SaveState of a running VM: %v", err)
	}
	for i := 0; i < 2; i++ { // repeating is a no-op
		if err := s.Pause(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := state(t, m); st != "Paused" {
		t.Fatalf("state after Pause: %s", st)
	}
	if _, err := m.DialAgent(ctxFor(t, 300*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the agent answered a paused VM: %v", err)
	}
	snap := t.TempDir()
	st, err := s.SaveState(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	if st.Driver != "firecracker" || st.VMMVersion != "1.16.1" || st.Bytes <= 0 {
		t.Errorf("saved state %+v", st)
	}
	if state(t, m) != "Paused" {
		t.Error("not paused after SaveState")
	}
	if err := s.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	agentHandshake(t, m)
	m.Kill()

	before := len(f.requests(t))
	spec2 := spec
	spec2.Dir, spec2.ConsoleLog = filepath.Join(t.TempDir(), "run"), filepath.Join(t.TempDir(), "console.log")
	spec2.Net = &vmm.NetIface{TAP: "tap-new", MAC: spec.Net.MAC}
	spec2.Kernel, spec2.KernelELF, spec2.Initrd = "", "", "" // a restore loads none
	spec2.Restore = snap
	r := start(t, d, spec2)
	if st := state(t, r); st != "Paused" {
		t.Fatalf("a restored VM is %s, want Paused until Resume", st)
	}
	var got []string
	var load SnapshotLoadParams
	for _, q := range since(t, f, before) {
		got = append(got, q.Method+" "+q.Path)
		if q.Path == "/snapshot/load" {
			if err := json.Unmarshal(q.Body, &load); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := "GET /version,PUT /logger,PUT /metrics,PUT /snapshot/load,GET /"; strings.Join(got, ",") != want {
		t.Errorf("restore requests %s, want %s", strings.Join(got, ","), want)
	}
	if load.SnapshotPath != filepath.Join(snap, StateFile) || load.MemBackend == nil ||
		*load.MemBackend != (MemoryBackend{"File", filepath.Join(snap, MemFile)}) || load.ResumeVM == nil || *load.ResumeVM {
		t.Errorf("load body %+v", load)
	}
	if len(load.NetworkOverrides) != 1 || load.NetworkOverrides[0] != (NetworkOverride{"eth0", "tap-new"}) ||
		load.VsockOverride == nil || load.VsockOverride.UDSPath != filepath.Join(spec2.Dir, vsockName) {
		t.Errorf("overrides %+v %+v", load.NetworkOverrides, load.VsockOverride)
	}
	if err := r.(vmm.Snapshotter).Resume(ctx); err != nil {
		t.Fatal(err)
	}
	agentHandshake(t, r)
	// The restored VM can be saved again.
	r.(vmm.Snapshotter).Pause(ctx)
	if _, err := r.(vmm.Snapshotter).SaveState(ctx, t.TempDir()); err != nil {
		t.Fatalf("save of a restored VM: %v", err)
	}
}

func savedSnapshot(t *testing.T, version string) string {
	t.Helper()
	snap := savedSnapshotOf(t, version, testSpec(t))
	// restored by specs with other disk paths: the drive check is
	// TestUnjailedRestoreRefusesOtherDisks's
	os.Remove(filepath.Join(snap, DrivesFile))
	return snap
}

// An unjailed microVM reopens its disks at the saved paths (snapshot/load
// has no drive override): a restore into other disks — a fork child's —
// is refused before a process starts, the same disks are accepted.
func TestUnjailedRestoreRefusesOtherDisks(t *testing.T) {
	spec := testSpec(t)
	snap := savedSnapshotOf(t, "1.16.1", spec)
	ctx := ctxFor(t, 10*time.Second)
	if _, err := os.Stat(filepath.Join(snap, DrivesFile)); err != nil {
		t.Fatalf("no %s: %v", DrivesFile, err)
	}
	f := newFake(t, "--fake-version", "1.16.1")
	_, err := f.driver(Options{}).Start(ctx, restoreSpec(t, snap))
	if err == nil || !strings.Contains(err.Error(), "jailer") {
		t.Fatalf("restore into other disks: %v", err)
	}
	if _, err := os.Stat(f.record); err == nil {
		t.Error("a process was started")
	}
	same := spec
	same.Dir, same.Restore = filepath.Join(t.TempDir(), "run"), snap
	same.Kernel, same.KernelELF, same.Initrd = "", "", ""
	r := start(t, f.driver(Options{}), same)
	if state(t, r) != "Paused" {
		t.Error("restore into the same disks: not paused")
	}
}

func restoreSpec(t *testing.T, snap string) vmm.Spec {
	s := testSpec(t)
	s.Restore = snap
	return s
}

// Fields newer than the running Firecracker are not sent: at 1.10 the
// load has no overrides (and the fake, emulating 1.10, accepts it).
func TestRestoreVersionGating(t *testing.T) {
	snap := savedSnapshot(t, "1.10.0")
	f := newFake(t, "--fake-version", "1.10.0")
	r := start(t, f.driver(Options{}), restoreSpec(t, snap))
	for _, q := range f.requests(t) {
		if q.Path == "/snapshot/load" && (strings.Contains(string(q.Body), "override")) {
			t.Errorf("1.10 got %s", q.Body)
		}
	}
	if state(t, r) != "Paused" {
		t.Error("not paused")
	}
}

// A failed load ends Firecracker; Start reports its reason and leaves no
// process. Missing files are refused before anything is started.
func TestRestoreFailures(t *testing.T) {
	snap := savedSnapshot(t, "1.16.1")
	corrupt := t.TempDir()
	os.WriteFile(filepath.Join(corrupt, StateFile), []byte(`{"format": "fake-fire`), 0o600)
	os.WriteFile(filepath.Join(corrupt, MemFile), nil, 0o600)
	for _, c := range []struct {
		name, version, dir, want string
	}{
		{"corrupt", "1.16.1", corrupt, "corrupt or not a snapshot"},
		{"other version", "1.17.0-dev", snap, "data format"},
		{"missing", "1.16.1", t.TempDir(), "no saved firecracker state"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, "--fake-version", c.version)
			_, err := f.driver(Options{}).Start(ctxFor(t, 10*time.Second), restoreSpec(t, c.dir))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if c.name == "missing" {
				if _, err := os.Stat(f.record); err == nil {
					t.Error("a process was started for a restore without state")
				}
			}
		})
	}
}

// The contract test of the snapshot requests, as TestContractBootPlan.
func TestContractSnapshot(t *testing.T) {
	api := loadSpec(t)
	for name, c := range contractSpecs(t) {
		for _, vs := range []string{"1.10.0", "1.13.0", "1.16.1", "1.17.0-dev"} {
			v, _ := ParseVersion(vs)
			plan := restorePlan(c.spec, c.files, "/snap/vmstate", "/snap/memory", v)
			plan = append(plan,
				step{http.MethodPatch, "/vm", VM{State: VMStatePaused}},
				step{http.MethodPatch, "/vm", VM{State: VMStateResumed}},
				step{http.MethodPut, "/snapshot/create", SnapshotCreateParams{SnapshotType: "Full", SnapshotPath: "/s/vmstate", MemFilePath: "/s/memory"}})
			for _, s := range plan {
				at := name + "@" + vs + " " + s.Method + " " + s.Path
				checkAgainstSpec(t, api, at, s.Method, s.Path, s.Body)
				if err := checkFields(v, s.Path, s.Body); err != nil {
					t.Errorf("%s: %v", at, err)
				}
			}
		}
	}
	yes := true
	full := SnapshotLoadParams{SnapshotPath: "/s", MemBackend: &MemoryBackend{"Uffd", "/u"}, ResumeVM: &yes,
		TrackDirtyPages: &yes, NetworkOverrides: []NetworkOverride{{"eth0", "tap0"}}, VsockOverride: &VsockOverride{"/v"}, ClockRealtime: &yes}
	for def, v := range map[string]any{"SnapshotLoadParams": full, "Vm": VM{State: VMStatePaused},
		"SnapshotCreateParams": SnapshotCreateParams{SnapshotType: "Diff", SnapshotPath: "/s", MemFilePath: "/m"}} {
		for _, e := range api.validate(asJSON(t, v), api.Definitions[def], def) {
			t.Error(e)
		}
	}
	v110, _ := ParseVersion("1.10.0")
	if err := checkFields(v110, "/snapshot/load", full); err == nil {
		t.Error("1.10 accepted overrides")
	}
}

// A jailed restore finds the state at /snapshot/* in the chroot: hard
// links of the saved files.
func TestStageRestoreLinksIntoJail(t *testing.T) {
	base := t.TempDir()
	l := newJailLayout(&JailerOptions{ChrootBase: base}, "/opt/fc/firecracker", "vm-1")
	snap := t.TempDir()
	state, mem := filepath.Join(snap, StateFile), filepath.Join(snap, MemFile)
	os.WriteFile(state, []byte("s"), 0o600)
	os.WriteFile(mem, []byte("m"), 0o600)
	if err := l.stageRestore(state, mem); err != nil {
		t.Fatalf("stageRestore (same filesystem): %v", err)
	}
	for _, name := range []string{StateFile, MemFile} {
		a, _ := os.Stat(filepath.Join(snap, name))
		b, err := os.Stat(l.host(filepath.Join(jailSnapDir, name)))
		if err != nil || !os.SameFile(a, b) {
			t.Errorf("%s not linked into the jail: %v", name, err)
		}
	}
	if err := l.stageRestore(filepath.Join(snap, "none"), mem); err == nil || !strings.Contains(err.Error(), "same filesystem") {
		t.Errorf("a missing state: %v", err)
	}
}

// savedSnapshotOf is the state of a fake Firecracker at version started
// with spec, paused and saved.
func savedSnapshotOf(t *testing.T, version string, spec vmm.Spec) string {
	t.Helper()
	m := start(t, newFake(t, "--fake-version", version).driver(Options{}), spec)
	ctx := ctxFor(t, 10*time.Second)
	m.(vmm.Snapshotter).Pause(ctx)
	snap := t.TempDir()
	if _, err := m.(vmm.Snapshotter).SaveState(ctx, snap); err != nil {
		t.Fatal(err)
	}
	m.Kill()
	return snap
}
