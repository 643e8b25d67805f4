package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/vmm"
)

// fakeQMP is a QMP server on a unix socket that records the commands it
// gets and answers with handle: a return value, an error description, or
// hang up.
type fakeQMP struct {
	mu     sync.Mutex
	cmds   []string
	args   map[string]json.RawMessage
	handle func(cmd string, args json.RawMessage) (ret any, errDesc string, hangup bool)
}

func newFakeQMP(t *testing.T, dir string, handle func(string, json.RawMessage) (any, string, bool)) *fakeQMP {
	t.Helper()
	f := &fakeQMP{args: map[string]json.RawMessage{}, handle: handle}
	l, err := net.Listen("unix", filepath.Join(dir, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeQMP) serve(c net.Conn) {
	defer c.Close()
	c.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}, "capabilities": []}}` + "\n"))
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if json.Unmarshal(sc.Bytes(), &req) != nil {
			return
		}
		var ret any = struct{}{}
		var desc string
		if req.Execute != "qmp_capabilities" {
			f.mu.Lock()
			f.cmds = append(f.cmds, req.Execute)
			f.args[req.Execute] = req.Arguments
			f.mu.Unlock()
			var hangup bool
			ret, desc, hangup = f.handle(req.Execute, req.Arguments)
			if hangup {
				return
			}
		}
		// an event first, as QEMU may interleave them
		c.Write([]byte(`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}` + "\n"))
		var b []byte
		if desc != "" {
			b, _ = json.Marshal(map[string]any{"error": map[string]string{"class": "GenericError", "desc": desc}})
		} else {
			b, _ = json.Marshal(map[string]any{"return": ret})
		}
		c.Write(append(b, '\n'))
	}
}

func (f *fakeQMP) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

func (f *fakeQMP) uri(cmd string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var a struct{ URI string }
	json.Unmarshal(f.args[cmd], &a)
	return a.URI
}

func fakeMachine(dir string) *Machine {
	return &Machine{done: make(chan struct{}), h: vmm.Handles{ControlSock: filepath.Join(dir, "qmp.sock")}}
}

// A restore's command line is the boot's with the same devices in the
// same order, plus -incoming defer; it differs only in what the saved
// state does not see: the RAM's backend (a boot's memfd, a restore's
// anonymous memory, under the same id) and the boot-only -kernel,
// -initrd and -append (restoreargs.go).
func TestArgsIncomingDeferOnlyWithRestore(t *testing.T) {
	d := &Driver{bin: "qemu", accel: "tcg", tscKHz: 2100000}
	spec := testSpec("/rt")
	cold := d.Args(spec)
	if slices.Contains(cold, "-incoming") {
		t.Errorf("a cold start has -incoming: %q", cold)
	}
	spec.Restore = "/snap"
	warm := d.Args(spec)
	var want []string
	for i := 0; i < len(cold); i++ {
		switch a := cold[i]; {
		case a == "-kernel" || a == "-initrd" || a == "-append":
			i++
		case a == memfdObject(spec):
			want = append(want, "memory-backend-ram,id=microvm.ram,size=1024M")
		default:
			want = append(want, a)
		}
	}
	if want = append(want, "-incoming", "defer"); !slices.Equal(warm, want) {
		t.Errorf("restore args:\n%q\nwant\n%q", warm, want)
	}
	if len(want) != len(cold)-6+2 {
		t.Errorf("the boot's args lack -kernel, -initrd or -append: %q", cold)
	}
}

func TestPauseResumeAreStopCont(t *testing.T) {
	dir := t.TempDir()
	f := newFakeQMP(t, dir, func(string, json.RawMessage) (any, string, bool) { return struct{}{}, "", false })
	m := fakeMachine(dir)
	ctx := context.Background()
	if err := m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); !slices.Equal(got, []string{"stop", "cont"}) {
		t.Errorf("commands %q", got)
	}
}

// saveHandler answers a save: the machine is in status, and the
// migration ends in final after one "active" poll. Like QEMU, it runs
// the exec: URI with /bin/sh, feeding it a stream.
func saveHandler(t *testing.T, status, final, desc string) func(string, json.RawMessage) (any, string, bool) {
	polls := 0
	return func(cmd string, args json.RawMessage) (any, string, bool) {
		switch cmd {
		case "query-status":
			return map[string]any{"status": status, "running": status == "running"}, "", false
		case "query-version":
			return map[string]any{"qemu": map[string]int{"major": 7, "minor": 2, "micro": 22}, "package": "Debian 1:7.2+dfsg-7+deb12u22"}, "", false
		case "migrate":
			var a struct{ URI string }
			json.Unmarshal(args, &a)
			sh := exec.Command("/bin/sh", "-c", strings.TrimPrefix(a.URI, "exec:"))
			sh.Stdin = strings.NewReader(strings.Repeat("QEVM", 4096))
			if out, err := sh.CombinedOutput(); err != nil {
				t.Errorf("exec URI %q: %v %s", a.URI, err, out)
			}
		case "query-migrate":
			if polls++; polls == 1 {
				return map[string]any{"status": "active"}, "", false
			}
			return map[string]any{"status": final, "error-desc": desc}, "", false
		}
		return struct{}{}, "", false
	}
}

func TestSaveStateMigratesToAQuotedFile(t *testing.T) {
	dir := t.TempDir()
	f := newFakeQMP(t, dir, saveHandler(t, "paused", "completed", ""))
	snap := filepath.Join(t.TempDir(), "it's a dir")
	os.Mkdir(snap, 0o700)
	st, err := fakeMachine(dir).SaveState(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"query-status", "query-version", "migrate-set-parameters", "migrate-set-capabilities", "migrate", "query-migrate", "query-migrate"}
	if got := f.commands(); !slices.Equal(got, want) {
		t.Errorf("commands %q, want %q", got, want)
	}
	if !strings.Contains(string(f.args["migrate-set-parameters"]), `"max-bandwidth":107374182400`) {
		t.Errorf("migrate-set-parameters %s", f.args["migrate-set-parameters"])
	}
	if got := string(f.args["migrate-set-capabilities"]); !strings.Contains(got, `"capability":"x-ignore-shared","state":false`) {
		t.Errorf("a private-memory save must migrate its RAM: migrate-set-capabilities %s", got)
	}
	if _, err := os.Stat(filepath.Join(snap, MemoryFile)); err == nil {
		t.Error("a save with its RAM in the stream wrote a memory note")
	}
	if b, err := os.ReadFile(filepath.Join(snap, StateFile)); err != nil || len(b) != 4*4096 {
		t.Fatalf("state file: %d bytes, %v", len(b), err)
	}
	if st.Driver != "qemu" || st.VMMVersion != "7.2.22" || st.Bytes < 4*4096 {
		t.Errorf("saved state %+v", st)
	}
}

func TestSaveStateRefusesARunningMachine(t *testing.T) {
	dir := t.TempDir()
	f := newFakeQMP(t, dir, saveHandler(t, "running", "completed", ""))
	_, err := fakeMachine(dir).SaveState(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "pause it first") {
		t.Fatalf("err = %v", err)
	}
	if got := f.commands(); !slices.Equal(got, []string{"query-status"}) {
		t.Errorf("commands %q", got)
	}
}

// A failed migration is reported with QEMU's reason and its log, and the
// machine is left as it was: paused (no cont), nothing removed.
func TestSaveStateFailureLeavesMachinePaused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, logFile), []byte("sh: 1: cannot create /x/state: Permission denied\n"), 0o600)
	f := newFakeQMP(t, dir, saveHandler(t, "paused", "failed", "Unable to write to command"))
	snap := t.TempDir()
	_, err := fakeMachine(dir).SaveState(context.Background(), snap)
	if err == nil || !strings.Contains(err.Error(), "Unable to write to command") || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("err = %v", err)
	}
	if slices.Contains(f.commands(), "cont") {
		t.Errorf("a failed save resumed the machine: %q", f.commands())
	}
	if _, err := os.Stat(filepath.Join(snap, StateFile)); err != nil {
		t.Errorf("the partial state file was removed: %v", err)
	}
}

func TestIncomingWaitsUntilPaused(t *testing.T) {
	dir := t.TempDir()
	polls := 0
	f := newFakeQMP(t, dir, func(cmd string, _ json.RawMessage) (any, string, bool) {
		if cmd == "query-status" {
			if polls++; polls < 3 {
				return map[string]string{"status": "inmigrate"}, "", false
			}
			return map[string]string{"status": "paused"}, "", false
		}
		return struct{}{}, "", false
	})
	if err := fakeMachine(dir).incoming(context.Background(), "/snap/it's/state", false); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); !slices.Equal(got, []string{"migrate-set-capabilities", "migrate-incoming", "query-status", "query-status", "query-status"}) {
		t.Errorf("commands %q", got)
	}
	if got := f.uri("migrate-incoming"); got != `exec:cat '/snap/it'\''s/state'` {
		t.Errorf("uri %s", got)
	}
}

// QEMU rejecting a state exits; the error quotes its own message.
func TestIncomingQuotesQEMUsRefusal(t *testing.T) {
	dir := t.TempDir()
	m := fakeMachine(dir)
	newFakeQMP(t, dir, func(cmd string, _ json.RawMessage) (any, string, bool) {
		if cmd == "query-status" {
			os.WriteFile(filepath.Join(dir, logFile), []byte("qemu-system-x86_64: Unknown savevm section or instance 'cpu_common' 1\nqemu-system-x86_64: load of migration failed: Invalid argument\n"), 0o600)
			close(m.done)
			return nil, "", true
		}
		return struct{}{}, "", false
	})
	err := m.incoming(context.Background(), "/snap/state", false)
	if err == nil || !strings.Contains(err.Error(), "Unknown savevm section") || !strings.Contains(err.Error(), "load of migration failed") {
		t.Fatalf("err = %v", err)
	}
}

// A restore from a directory without a state starts no process.
func TestRestoreWithoutStateStartsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	bin := filepath.Join(dir, "qemu")
	os.WriteFile(bin, []byte("#!/bin/sh\ntouch "+marker+"\nsleep 5\n"), 0o755)
	d := &Driver{bin: bin, accel: "tcg"}
	spec := testSpec(filepath.Join(dir, "rt"))
	spec.Restore = t.TempDir()
	_, err := d.Start(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "no saved qemu state") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a process was started for a restore without state")
	}
}

// A caller giving up cancels the migration (on a deadline of its own:
// the caller's has passed) and waits for QEMU to finish cancelling.
func TestSaveStateCancelledByCtx(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	cancelled := false
	f := newFakeQMP(t, dir, func(cmd string, _ json.RawMessage) (any, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		switch cmd {
		case "query-status":
			return map[string]string{"status": "paused"}, "", false
		case "query-version":
			return map[string]any{"qemu": map[string]int{"major": 7, "minor": 2, "micro": 22}}, "", false
		case "migrate_cancel":
			cancelled = true
		case "query-migrate":
			if cancelled {
				return map[string]string{"status": "cancelled"}, "", false
			}
			return map[string]string{"status": "active"}, "", false
		}
		return struct{}{}, "", false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := fakeMachine(dir).SaveState(ctx, t.TempDir())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	cmds := f.commands()
	if i := slices.Index(cmds, "migrate_cancel"); i < 0 || cmds[len(cmds)-1] != "query-migrate" {
		t.Errorf("commands %q: want migrate_cancel, then a poll until cancelled", cmds)
	}
}
