package qemu

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// Every machine's RAM is a backend object with the same id (the one QEMU
// gives its default backend), so saved states stay loadable whichever
// backend the restoring machine uses.
func TestArgsMemoryBackends(t *testing.T) {
	d := &Driver{bin: "qemu", accel: "tcg"}
	spec := testSpec("/rt")
	for _, c := range []struct {
		mem     vmm.MemorySpec
		restore string
		want    string
	}{
		{vmm.MemorySpec{}, "", "memory-backend-memfd,id=microvm.ram,size=1024M,share=on"},
		{vmm.MemorySpec{}, "/snap/state", "memory-backend-ram,id=microvm.ram,size=1024M"},
		{vmm.MemorySpec{File: "/warm/k,1/mem", Shared: true}, "", "memory-backend-file,id=microvm.ram,size=1024M,mem-path=/warm/k,,1/mem,share=on"},
		{vmm.MemorySpec{File: "/warm/k/mem"}, "", "memory-backend-file,id=microvm.ram,size=1024M,mem-path=/proc/self/fd/4,share=off"},
	} {
		spec.Memory, spec.Restore = c.mem, c.restore
		spec.Inherit = []*os.File{os.Stdin} // one flock: the memory file is fd 4
		a := d.Args(spec)
		i := slices.Index(a, "-object")
		if i < 0 || a[i+1] != c.want {
			t.Errorf("%+v: -object %q, want %q", c.mem, a[i+1:i+2], c.want)
		}
		if !strings.Contains(strings.Join(a, " "), "microvm,x-option-roms=off,isa-serial=on,rtc=on,memory-backend=microvm.ram ") {
			t.Errorf("%+v: -M does not name the backend: %q", c.mem, a)
		}
	}
}

// A save of a machine whose memory is a shared file leaves the RAM out
// (x-ignore-shared) and notes the file beside the state.
func TestSaveStateOfSharedMemoryIgnoresIt(t *testing.T) {
	dir := t.TempDir()
	f := newFakeQMP(t, dir, saveHandler(t, "paused", "completed", ""))
	mem := filepath.Join(t.TempDir(), "mem")
	os.WriteFile(mem, make([]byte, 4096), 0o600)
	m := fakeMachine(dir)
	m.mem = vmm.MemorySpec{File: mem, Shared: true}
	snap := t.TempDir()
	if _, err := m.SaveState(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if got := string(f.args["migrate-set-capabilities"]); !strings.Contains(got, `"capability":"x-ignore-shared","state":true`) {
		t.Errorf("migrate-set-capabilities %s", got)
	}
	n, ok, err := readMemoryNote(snap)
	if err != nil || !ok || n.File != mem || n.Bytes != 4096 {
		t.Errorf("memory note %+v %v %v", n, ok, err)
	}
}

// The receiving side sets the same capability before migrate-incoming.
func TestIncomingSetsIgnoreSharedFirst(t *testing.T) {
	dir := t.TempDir()
	f := newFakeQMP(t, dir, func(cmd string, _ json.RawMessage) (any, string, bool) {
		if cmd == "query-status" {
			return map[string]string{"status": "paused"}, "", false
		}
		return struct{}{}, "", false
	})
	if err := fakeMachine(dir).incoming(context.Background(), "/snap/state", true); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); len(got) < 2 || got[0] != "migrate-set-capabilities" || got[1] != "migrate-incoming" {
		t.Errorf("commands %q", got)
	}
	if got := string(f.args["migrate-set-capabilities"]); !strings.Contains(got, `"state":true`) {
		t.Errorf("migrate-set-capabilities %s", got)
	}
}

// A state that never loads (QEMU stays "inmigrate") is a bounded error.
func TestIncomingIsBounded(t *testing.T) {
	defer func(d time.Duration) { restoreLimit = d }(restoreLimit)
	restoreLimit = 300 * time.Millisecond
	dir := t.TempDir()
	newFakeQMP(t, dir, func(cmd string, _ json.RawMessage) (any, string, bool) {
		if cmd == "query-status" {
			return map[string]string{"status": "inmigrate"}, "", false
		}
		return struct{}{}, "", false
	})
	start := time.Now()
	err := fakeMachine(dir).incoming(context.Background(), "/snap/state", false)
	if err == nil || !strings.Contains(err.Error(), "did not load within") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// Bad memory files are refused before any process starts: QEMU itself
// would create a missing file zero-filled and "restore" into it.
func TestBadMemoryFilesStartNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	bin := filepath.Join(dir, "qemu")
	os.WriteFile(bin, []byte("#!/bin/sh\ntouch "+marker+"\nsleep 5\n"), 0o755)
	d := &Driver{bin: bin, accel: "tcg"}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, make([]byte, 4096), 0o600)
	snap := t.TempDir()
	os.WriteFile(filepath.Join(snap, StateFile), []byte("QEVM"), 0o600)
	noted := t.TempDir()
	os.WriteFile(filepath.Join(noted, StateFile), []byte("QEVM"), 0o600)
	os.WriteFile(filepath.Join(noted, MemoryFile), []byte(`{"ignore_shared":true,"file":"/t/mem","bytes":1073741824}`), 0o600)
	for _, c := range []struct {
		name    string
		mem     vmm.MemorySpec
		restore string
		want    string
	}{
		{"missing private file", vmm.MemorySpec{File: filepath.Join(dir, "nope")}, snap, "no such file"},
		{"short private file", vmm.MemorySpec{File: short}, snap, "has 4096 bytes"},
		{"existing shared file", vmm.MemorySpec{File: short, Shared: true}, "", "already exists"},
		{"shared restore of a state without its memory", vmm.MemorySpec{File: filepath.Join(dir, "new"), Shared: true}, noted, "saved without its memory"},
		{"shared restore into an existing file", vmm.MemorySpec{File: short, Shared: true}, snap, "already exists"},
		{"state without its memory", vmm.MemorySpec{}, noted, "saved without its memory"},
	} {
		spec := testSpec(filepath.Join(dir, "rt"))
		spec.Memory, spec.Restore = c.mem, c.restore
		_, err := d.Start(context.Background(), spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a process was started")
	}
}

// A state saved with its own memory file (a memfd machine's) restores
// from a copy of it: into a new memfd, or into a fork template's new
// shared file; a missing or short file is refused before QEMU starts.
func TestStateMemoryIsCopied(t *testing.T) {
	dir := t.TempDir()
	const want = 4 << 20
	if _, err := stateMemory(dir, want); err == nil || !strings.Contains(err.Error(), "memory file is missing") {
		t.Fatalf("no memory file: %v", err)
	}
	f, err := os.Create(filepath.Join(dir, StateMemFile))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(want / 2)
	if _, err := stateMemory(dir, want); err == nil || !strings.Contains(err.Error(), "not the guest's memory size") {
		t.Fatalf("short memory file: %v", err)
	}
	f.Truncate(want)
	f.WriteAt([]byte("guest page"), 1<<20)
	f.Close()
	mem, err := stateMemory(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	got := make([]byte, 10)
	if _, err := mem.ReadAt(got, 1<<20); err != nil || string(got) != "guest page" {
		t.Errorf("memfd copy: %q %v", got, err)
	}
	if l, _ := os.Readlink(fdPathOf(mem)); !strings.HasPrefix(l, "/memfd:"+memfdName+" ") {
		t.Errorf("the copy is %q, not a memfd the driver finds again", l)
	}
	shared := filepath.Join(t.TempDir(), "shared")
	if err := fillShared(dir, shared, want); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(shared); len(b) != want || string(b[1<<20:1<<20+10]) != "guest page" {
		t.Errorf("shared copy: %d bytes", len(b))
	}
	if err := fillShared(dir, shared, want); err == nil {
		t.Error("an existing shared file was overwritten")
	}
}

func fdPathOf(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }
