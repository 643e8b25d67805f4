package firecracker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/vmm"
)

var _ vmm.Driver = (*Driver)(nil)

func TestStartDialShutdown(t *testing.T) {
	f := newFake(t)
	spec := testSpec(t)
	m := start(t, f.driver(Options{}), spec)

	h := m.Handles()
	if h.Driver != "firecracker" || h.PID <= 0 || h.StartTicks == 0 || h.TAP != "tap-dev" {
		t.Fatalf("bad handles %+v", h)
	}
	if h.ControlSock != filepath.Join(spec.Dir, "fc.sock") || h.AgentSock != filepath.Join(spec.Dir, "vsock.sock") {
		t.Fatalf("bad sockets %+v", h)
	}
	agentHandshake(t, m)

	if err := m.Shutdown(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	waitDone(t, m, time.Second)
	assertGone(t, h.ControlSock, h.AgentSock)
	checkRecordedBoot(t, f, spec)
	checkConsole(t, spec)
}

// agentHandshake speaks banger's channel hello through DialAgent and
// checks that bytes after it flow both ways.
func agentHandshake(t *testing.T, m vmm.Machine) {
	t.Helper()
	conn, err := m.DialAgent(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatalf("DialAgent: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "%snonce42\nping\n", proto.HelloPrefix)
	r := bufio.NewReader(conn)
	rest, err := proto.ScanForLine(r, proto.ReadyPrefix)
	if err != nil || rest != "nonce42 fake" {
		t.Fatalf("handshake: got %q, %v", rest, err)
	}
	if echo, err := r.ReadString('\n'); err != nil || echo != "ping\n" {
		t.Fatalf("echo: got %q, %v", echo, err)
	}
}

func checkRecordedBoot(t *testing.T, f fake, spec vmm.Spec) {
	t.Helper()
	var got []string
	for _, r := range f.requests(t) {
		got = append(got, r.Method+" "+r.Path)
		if strings.HasPrefix(r.Path, "/drives/") {
			var d Drive
			json.Unmarshal(r.Body, &d)
			if d.IsRootDevice {
				t.Errorf("%s is a root device; banger's root comes from the initramfs", r.Path)
			}
		}
	}
	want := []string{"GET /version", "PUT /logger", "PUT /metrics", "PUT /machine-config",
		"PUT /boot-source", "PUT /drives/base", "PUT /drives/overlay", "PUT /drives/work",
		"PUT /network-interfaces/eth0", "PUT /vsock", "PUT /actions", "PUT /actions"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// checkConsole reads the command line the fake "guest" printed: the base
// line, banger's arguments, Firecracker's pci=off, and no root=.
func checkConsole(t *testing.T, spec vmm.Spec) {
	t.Helper()
	b, err := os.ReadFile(spec.ConsoleLog)
	if err != nil {
		t.Fatal(err)
	}
	want := "Command line: " + BaseBootArgs + " quiet banger.vm=dev pci=off\n"
	if !strings.Contains(string(b), want) {
		t.Fatalf("console:\n%s\nwant a line %q", b, want)
	}
	if strings.Contains(string(b), "root=") {
		t.Fatalf("a root= was added: %s", b)
	}
}

func TestStartFailures(t *testing.T) {
	cases := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"exits before socket", []string{"--fake-exit-early", "'kvm: permission denied (fake)'"},
			[]string{"during start-up", "kvm: permission denied (fake)", "exit status 1"}},
		{"exits during boot", []string{"--fake-exit-on", "/drives/overlay"},
			[]string{"PUT /drives/overlay", "dying on PUT /drives/overlay", "exit status 1"}},
		{"api 400", []string{"--fake-fail", "/network-interfaces/eth0"},
			[]string{"400", "injected failure on PUT /network-interfaces/eth0"}},
		{"socket never appears", []string{"--fake-no-socket"},
			[]string{"api socket", "not ready", "deadline exceeded"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, c.flags...)
			spec := testSpec(t)
			d := f.driver(Options{SocketTimeout: 500 * time.Millisecond})
			began := time.Now()
			m, err := d.Start(ctxFor(t, 10*time.Second), spec)
			if err == nil {
				m.Kill()
				t.Fatal("Start succeeded")
			}
			if took := time.Since(began); took > 4*time.Second {
				t.Errorf("failure took %s", took)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// The process was killed and reaped, which removes the sockets.
			assertGone(t, filepath.Join(spec.Dir, "fc.sock"), filepath.Join(spec.Dir, "vsock.sock"))
		})
	}
}

func TestStartAPIErrorIsTyped(t *testing.T) {
	f := newFake(t, "--fake-fail", "/vsock")
	_, err := f.driver(Options{}).Start(ctxFor(t, 10*time.Second), testSpec(t))
	e, ok := IsAPIError(err)
	if !ok || e.Status != 400 || e.Path != "/vsock" || !strings.Contains(e.FaultMessage, "injected") {
		t.Fatalf("got %v (%#v)", err, e)
	}
}

func TestStartRemovesStaleSockets(t *testing.T) {
	spec := testSpec(t)
	os.MkdirAll(spec.Dir, 0o700)
	for _, n := range []string{"fc.sock", "vsock.sock"} {
		os.WriteFile(filepath.Join(spec.Dir, n), nil, 0o600)
	}
	m := start(t, newFake(t).driver(Options{}), spec)
	agentHandshake(t, m)
}

func TestStartRejectsBadSpecs(t *testing.T) {
	d := newFake(t).driver(Options{})
	cases := map[string]func(*vmm.Spec){
		"bzImage only":   func(s *vmm.Spec) { s.KernelELF = "" },
		"no kernel":      func(s *vmm.Spec) { s.Kernel, s.KernelELF = "", "" },
		"bad disk id":    func(s *vmm.Spec) { s.Disks[1].ID = "over-lay" },
		"duplicate disk": func(s *vmm.Spec) { s.Disks[1].ID = "base" },
		"long tap":       func(s *vmm.Spec) { s.Net.TAP = "tap-0123456789abcdef" },
		"vcpus":          func(s *vmm.Spec) { s.VCPU = 33 },
		"no dir":         func(s *vmm.Spec) { s.Dir = "" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			spec := testSpec(t)
			mutate(&spec)
			if m, err := d.Start(ctxFor(t, 5*time.Second), spec); err == nil {
				m.Kill()
				t.Fatal("Start accepted the spec")
			}
		})
	}
}

func TestDialAgentNoListenerRespectsCtx(t *testing.T) {
	m := start(t, newFake(t, "--fake-no-agent").driver(Options{}), testSpec(t))
	began := time.Now()
	_, err := m.DialAgent(ctxFor(t, 300*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no guest listener") {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("DialAgent took %s", took)
	}
}

func TestDialAgentRetriesUntilAgentListens(t *testing.T) {
	m := start(t, newFake(t, "--fake-agent-delay", "400ms").driver(Options{}), testSpec(t))
	agentHandshake(t, m)
}

func TestDialAgentFailsWhenVMMExits(t *testing.T) {
	m := start(t, newFake(t, "--fake-no-agent").driver(Options{}), testSpec(t))
	go func() { time.Sleep(200 * time.Millisecond); m.Kill() }()
	_, err := m.DialAgent(ctxFor(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "firecracker exited") {
		t.Fatalf("got %v", err)
	}
}

func TestShutdownRespectsCtx(t *testing.T) {
	m := start(t, newFake(t, "--fake-ignore-ctrlaltdel").driver(Options{}), testSpec(t))
	err := m.Shutdown(ctxFor(t, 300*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(ctxFor(t, time.Second)); err != nil {
		t.Fatalf("Shutdown of a dead machine: %v", err)
	}
}

func TestKillIdempotent(t *testing.T) {
	spec := testSpec(t)
	m := start(t, newFake(t).driver(Options{}), spec)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := m.Kill(); err != nil {
				t.Errorf("Kill: %v", err)
			}
		})
	}
	wg.Wait()
	waitDone(t, m, time.Second)
	if err := m.Kill(); err != nil {
		t.Fatalf("Kill after exit: %v", err)
	}
	assertGone(t, m.Handles().ControlSock, m.Handles().AgentSock)
	if _, err := m.DialAgent(ctxFor(t, time.Second)); err == nil {
		t.Fatal("DialAgent on a dead machine succeeded")
	}
}

func TestAttachThenKill(t *testing.T) {
	f := newFake(t)
	spec := testSpec(t)
	first := start(t, f.driver(Options{}), spec)
	h := first.Handles()

	// A new daemon: its own driver, only the handles.
	m, err := f.driver(Options{}).Attach(h)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if m.Handles() != h {
		t.Fatalf("handles changed: %+v", m.Handles())
	}
	agentHandshake(t, m)
	if err := m.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	waitDone(t, m, time.Second)
	waitDone(t, first, time.Second)
	assertGone(t, h.ControlSock, h.AgentSock)
	if _, err := f.driver(Options{}).Attach(h); err == nil {
		t.Fatal("Attach to an exited process succeeded")
	}
}

func TestAttachRefusesOtherProcesses(t *testing.T) {
	m := start(t, newFake(t).driver(Options{}), testSpec(t))
	d := New(Options{})
	reused := m.Handles()
	reused.StartTicks++
	if _, err := d.Attach(reused); err == nil || !strings.Contains(err.Error(), "reused") {
		t.Fatalf("stale start time: got %v", err)
	}
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	_, ticks, err := procStat(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	other := vmm.Handles{Driver: "firecracker", PID: sleep.Process.Pid, StartTicks: ticks}
	if _, err := d.Attach(other); err == nil || !strings.Contains(err.Error(), "not firecracker") {
		t.Fatalf("non-firecracker pid: got %v", err)
	}
	if _, err := d.Attach(vmm.Handles{Driver: "qemu", PID: 1}); err == nil {
		t.Fatal("attached to another driver's handles")
	}
}

func TestVersionGatingAgainstFake(t *testing.T) {
	for _, c := range []struct {
		version string
		emitID  bool
	}{{"1.16.1", false}, {"1.17.0-dev", true}} {
		t.Run(c.version, func(t *testing.T) {
			f := newFake(t, "--fake-version", c.version)
			m := start(t, f.driver(Options{}), testSpec(t))
			m.Kill()
			for _, r := range f.requests(t) {
				if r.Path == "/metrics" && strings.Contains(string(r.Body), "emit_id") != c.emitID {
					t.Fatalf("version %s: metrics body %s", c.version, r.Body)
				}
			}
		})
	}
}

func TestAvailable(t *testing.T) {
	d := New(Options{Binary: filepath.Join(t.TempDir(), "no-such-firecracker")})
	if err := d.Available(); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing binary: got %v", err)
	}
	notDev := filepath.Join(t.TempDir(), "kvm")
	os.WriteFile(notDev, nil, 0o600)
	if err := checkKVM(notDev, t.TempDir()); err == nil || !strings.Contains(err.Error(), "KVM_GET_API_VERSION") {
		t.Fatalf("regular file: got %v", err)
	}
	if err := checkKVM(filepath.Join(t.TempDir(), "none"), t.TempDir()); err == nil {
		t.Fatal("missing device accepted")
	}
	// Where /dev/kvm works, a loaded kvm_pvm must still make it unusable.
	if checkKVM("/dev/kvm", t.TempDir()) == nil {
		mods := t.TempDir()
		os.Mkdir(filepath.Join(mods, "kvm_pvm"), 0o755)
		if err := checkKVM("/dev/kvm", mods); err == nil || !strings.Contains(err.Error(), "PVM") {
			t.Fatalf("pvm: got %v", err)
		}
	}
	t.Logf("this host: Available()=%v Accel()=%q", newFake(t).driver(Options{}).Available(), New(Options{}).Accel())
}
