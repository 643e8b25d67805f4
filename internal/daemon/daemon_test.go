package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/fake"
)

var agentBin string

func TestMain(m *testing.M) {
	if os.Getenv(strayHelperEnv) != "" {
		strayHelper() // strays_test.go: a stand-in VMM process
	}
	dir, err := os.MkdirTemp("", "banger-daemon-test")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "banger-agent")
	cmd := exec.Command("go", "build", "-o", agentBin, "github.com/banger-dev/banger/cmd/banger-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		panic("build agent: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness is a daemon serving on a socket with a fake VMM and network.
type harness struct {
	t      *testing.T
	paths  config.Paths
	cfg    config.Config
	drv    *fake.Driver
	net    *hostnet.Fake
	client *client.Client
	stop   func()
	ssh    sshFakes // vm_ssh_test.go
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessOn(t, hostnet.NewFake(netip.MustParsePrefix("10.9.0.0/24")))
}

// newHarnessOn is newHarness with a given fake network.
func newHarnessOn(t *testing.T, n *hostnet.Fake) *harness {
	t.Helper()
	root := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "bgd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	h := &harness{t: t, drv: fake.New(), net: n}
	h.paths = config.Paths{ConfigDir: filepath.Join(root, "config"), StateDir: filepath.Join(root, "state"),
		CacheDir: filepath.Join(root, "cache"), RuntimeDir: filepath.Join(rt, "banger")}
	h.cfg, _ = config.Load(filepath.Join(root, "none.toml"))
	h.cfg.AgentBin = agentBin
	h.cfg.BootTimeout.Duration = 3 * time.Second
	h.cfg.BootStallTimeout.Duration = time.Second
	h.cfg.VMDefaults = config.VMDefaults{VCPU: 1, MemoryMiB: 512, DiskSize: "1G"}
	h.cfg.Snapshots.Warm = new(bool) // warm_test.go turns warm starts on
	h.start()
	h.seedArtifacts()
	return h
}

func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Options{Paths: h.paths, Config: h.cfg, Net: h.net, Driver: h.drv,
		Log:      slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		SSHReady: h.ssh.ready, SSHProbe: h.ssh.probe})
	if err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		d.Run(ctx)
		close(done)
	}()
	h.client = &client.Client{Paths: h.paths}
	h.stop = func() {
		cancel()
		<-done
	}
	h.t.Cleanup(h.stop)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := h.client.Status(context.Background()); err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatal("daemon did not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seedArtifacts registers a stand-in image and kernel so no build runs.
func (h *harness) seedArtifacts() {
	h.t.Helper()
	st, err := store.Open(context.Background(), h.paths.Database())
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	kdir := filepath.Join(h.paths.CacheDir, "kernels", "test")
	os.MkdirAll(kdir, 0o700)
	f, _ := os.Create(filepath.Join(kdir, "modules.cpio"))
	cpio.NewWriter(f).Close()
	f.Close()
	img := filepath.Join(h.paths.CacheDir, "rootfs.ext4")
	os.WriteFile(img, []byte("image"), 0o600)
	must(h.t, st.PutKernel(context.Background(), store.Kernel{Name: config.DefaultKernelName, Dir: kdir, Release: "6.1-test", Source: "test"}))
	must(h.t, st.PutImage(context.Background(), store.Image{Name: config.DefaultImageName, Path: img, SizeBytes: 5, Source: "test"}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) call(method string, params, out any) error {
	return h.client.Call(context.Background(), method, params, out, nil)
}

func (h *harness) create(name string) api.VM {
	h.t.Helper()
	var vm api.VM
	must(h.t, h.call(api.MethodVMCreate, api.CreateParams{Name: name, WaitSSH: true}, &vm))
	return vm
}

// run executes vm.run and returns stdout and the exit status.
func (h *harness) run(p api.RunParams) (string, proto.ExitStatus, error) {
	return h.stream(api.MethodVMRun, p)
}

// exec executes vm.exec and returns stdout and the exit status.
func (h *harness) exec(p api.ExecParams) (string, proto.ExitStatus, error) {
	return h.stream(api.MethodVMExec, p)
}

func (h *harness) stream(method string, p any) (string, proto.ExitStatus, error) {
	conn, err := h.client.Stream(context.Background(), method, p, nil, nil)
	if err != nil {
		return "", proto.ExitStatus{}, err
	}
	defer conn.Close()
	var out, errb bytes.Buffer
	st, err := proto.PumpExec(conn, strings.NewReader(""), &out, &errb, nil)
	return out.String(), st, err
}

func (h *harness) assertNoTrace(id string) {
	h.t.Helper()
	if h.net.TAPCount() != 0 {
		h.t.Errorf("TAPs left: %v", h.net.TAPs)
	}
	for _, dir := range []string{h.paths.VMDir(id), h.paths.VMRuntimeDir(id)} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			h.t.Errorf("%s left behind", dir)
		}
	}
	var vms []api.VM
	must(h.t, h.call(api.MethodVMList, nil, &vms))
	if len(vms) != 0 {
		h.t.Errorf("VMs left: %v", vms)
	}
}

func TestRunRemovePropagatesExitAndLeavesNothing(t *testing.T) {
	h := newHarness(t)
	out, st, err := h.run(api.RunParams{Remove: true, Create: api.CreateParams{Name: "once"}, ExecRequest: api.ExecRequest{Argv: []string{"sh", "-c", "echo hello; exit 7"}}})
	if err != nil {
		t.Fatal(err)
	}
	if out != "hello\n" || st.Code != 7 {
		t.Fatalf("out %q code %d", out, st.Code)
	}
	if h.drv.Running() != 0 {
		t.Errorf("%d machines still running", h.drv.Running())
	}
	if h.drv.Starts != 1 {
		t.Fatalf("starts = %d", h.drv.Starts)
	}
	h.assertNoTrace(h.drv.LastSpec().ID)
}

func TestCreateStopStartDelete(t *testing.T) {
	h := newHarness(t)
	vm := h.create("dev")
	if vm.State != store.StateRunning || vm.IP != "10.9.0.2" || vm.PID == 0 {
		t.Fatalf("created %+v", vm)
	}
	if !h.net.TAPExists(tapName(vm.ID)) {
		t.Fatal("no TAP for the running VM")
	}
	spec := h.drv.Machine(vm.ID).Spec()
	if len(spec.Disks) != 4 || !spec.Disks[0].ReadOnly || spec.Initrd == "" {
		t.Errorf("spec %+v", spec)
	}
	b, err := os.ReadFile(spec.Disks[3].Path)
	must(t, err)
	gc, err := proto.DecodeConfigDrive(bytes.NewReader(b))
	must(t, err)
	if gc.Hostname != "dev" || gc.Net.Address != "10.9.0.2/24" || gc.Net.Gateway != "10.9.0.1" || len(gc.AuthorizedKeys) != 1 {
		t.Errorf("guest config %+v", gc)
	}
	if err := h.call(api.MethodVMCreate, api.CreateParams{Name: "dev"}, nil); !isCode(err, api.CodeConflict) {
		t.Errorf("duplicate create: %v", err)
	}
	var got api.VM
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "de"}, &got)) // unique prefix
	if got.State != store.StateStopped || h.net.TAPCount() != 0 || !h.drv.Machine(vm.ID).Exited() {
		t.Fatalf("after stop: %+v taps=%d", got, h.net.TAPCount())
	}
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, &got))
	if got.State != store.StateRunning || h.drv.Starts != 2 {
		t.Fatalf("after start: %+v starts=%d", got, h.drv.Starts)
	}
	if err := h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil); !isCode(err, api.CodeConflict) {
		t.Errorf("second start: %v", err)
	}
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "dev"}, nil))
	h.assertNoTrace(vm.ID)
	kh, _ := os.ReadFile(filepath.Join(h.paths.SSHDir(), "known_hosts"))
	if strings.Contains(string(kh), "dev.vm") {
		t.Errorf("pin left: %s", kh)
	}
}

func isCode(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

func TestBadInputChangesNothing(t *testing.T) {
	h := newHarness(t)
	for _, p := range []api.CreateParams{
		{Name: "Not_A_Label"}, {Name: "x", VCPU: 999}, {Name: "x", MemoryMiB: 10},
		{Name: "x", DiskSize: "lots"}, {Name: "x", Image: "nope"},
	} {
		err := h.call(api.MethodVMCreate, p, nil)
		if !isCode(err, api.CodeInvalid) && !isCode(err, api.CodeNotFound) {
			t.Errorf("%+v: %v", p, err)
		}
	}
	if err := h.call(api.MethodVMShow, api.NameParams{Name: "ghost"}, nil); !isCode(err, api.CodeNotFound) {
		t.Errorf("show ghost: %v", err)
	}
	if h.drv.Starts != 0 {
		t.Errorf("a VMM was started")
	}
	h.assertNoTrace("none")
}

func TestAgentNeverReadyMarksFailedAndQuotesConsole(t *testing.T) {
	h := newHarness(t)
	h.drv.NoAgent = true
	err := h.call(api.MethodVMCreate, api.CreateParams{Name: "mute"}, nil)
	if err == nil || !strings.Contains(err.Error(), "fake console line 2") || !strings.Contains(err.Error(), "console.log") {
		t.Fatalf("err = %v", err)
	}
	var vm api.VM
	must(t, h.call(api.MethodVMShow, api.NameParams{Name: "mute"}, &vm))
	if vm.State != store.StateFailed || h.net.TAPCount() != 0 || h.drv.Running() != 0 {
		t.Errorf("vm %+v taps %d running %d", vm, h.net.TAPCount(), h.drv.Running())
	}
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "mute"}, nil))
	h.assertNoTrace(vm.ID)
}

// A guest silent from its start is hung: the daemon restarts its VMM
// once, says so, and keeps the evidence; the second start boots.
func TestHungBootIsRestartedOnceWithEvidence(t *testing.T) {
	h := newHarness(t)
	h.drv.MuteStarts = 1
	var warnings []string
	var vm api.VM
	err := h.client.Call(context.Background(), api.MethodVMCreate, api.CreateParams{Name: "stuck"}, &vm, func(p api.Progress) {
		if strings.HasPrefix(p.Message, "warning: ") {
			warnings = append(warnings, p.Message)
		}
	})
	must(t, err)
	if vm.State != store.StateRunning || h.drv.Starts != 2 || h.drv.Running() != 1 {
		t.Fatalf("state %s, starts %d, running %d", vm.State, h.drv.Starts, h.drv.Running())
	}
	evidence := filepath.Join(h.paths.VMDir(vm.ID), "boot-stall.txt")
	if len(warnings) != 1 || !strings.Contains(warnings[0], "restarting the VMM once") || !strings.Contains(warnings[0], evidence) {
		t.Fatalf("warnings = %q", warnings)
	}
	b, err := os.ReadFile(evidence)
	if err != nil || !strings.Contains(string(b), "fake vcpu: halted") || !strings.Contains(string(b), "fake console line 2") {
		t.Fatalf("evidence: %v\n%s", err, b)
	}
	out, st, err := h.run(api.RunParams{Create: api.CreateParams{Name: "after"}, ExecRequest: api.ExecRequest{Argv: []string{"echo", "up"}}})
	if err != nil || st.Code != 0 || out != "up\n" {
		t.Fatalf("run: %q %+v %v", out, st, err)
	}
}

// A guest that hangs again after the restart fails the boot; nothing is
// left running.
func TestHungTwiceFailsCleanly(t *testing.T) {
	h := newHarness(t)
	h.drv.MuteStarts = 2
	err := h.call(api.MethodVMCreate, api.CreateParams{Name: "stuck"}, nil)
	if err == nil || !strings.Contains(err.Error(), "it is hung") || !strings.Contains(err.Error(), "fake console line 2") {
		t.Fatalf("err = %v", err)
	}
	if h.drv.Starts != 2 || h.drv.Running() != 0 || h.net.TAPCount() != 0 {
		t.Errorf("starts %d running %d taps %d", h.drv.Starts, h.drv.Running(), h.net.TAPCount())
	}
}

func TestDaemonRestartReattachesAndNoticesDeadVMs(t *testing.T) {
	h := newHarness(t)
	alive := h.create("alive")
	dead := h.create("dead")
	h.stop() // the daemon goes away; its VMs keep running
	h.drv.Machine(dead.ID).Crash()
	h.start()
	var vms []api.VM
	must(t, h.call(api.MethodVMList, nil, &vms))
	states := map[string]string{}
	for _, v := range vms {
		states[v.Name] = v.State
	}
	if states["alive"] != store.StateRunning || states["dead"] != store.StateStopped {
		t.Fatalf("states after restart: %v", states)
	}
	if h.net.TAPExists(tapName(dead.ID)) || !h.net.TAPExists(tapName(alive.ID)) {
		t.Errorf("taps: %v", h.net.TAPs)
	}
	out, st, err := h.run(api.RunParams{Create: api.CreateParams{Name: "other"}, ExecRequest: api.ExecRequest{Argv: []string{"echo", "still here"}}})
	if err != nil || st.Code != 0 || out != "still here\n" {
		t.Fatalf("run after restart: %q %+v %v", out, st, err)
	}
}

func TestCrashedVMIsMarkedStopped(t *testing.T) {
	h := newHarness(t)
	vm := h.create("crashy")
	h.drv.Machine(vm.ID).Crash()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got api.VM
		must(t, h.call(api.MethodVMShow, api.NameParams{Name: "crashy"}, &got))
		if got.State == store.StateStopped {
			if !strings.Contains(got.LastError, "powered off") || h.net.TAPCount() != 0 {
				t.Errorf("got %+v taps %d", got, h.net.TAPCount())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s", got.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSlowBootDoesNotBlockOtherVMs(t *testing.T) {
	h := newHarness(t)
	other := h.create("other")
	release := make(chan struct{})
	h.drv.StartHook = func(ctx context.Context, spec vmm.Spec) error {
		if spec.Name == "slow" {
			<-release
		}
		return nil
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.call(api.MethodVMCreate, api.CreateParams{Name: "slow"}, nil)
	}()
	time.Sleep(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- h.call(api.MethodVMStop, api.NameParams{Name: other.Name}, nil) }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("vm stop of another VM blocked behind a slow create")
	}
	close(release)
	wg.Wait()
}

// Building the initramfs for a new agent removes the ones this kernel
// had for earlier agents once an hour old, and nothing of other kernels.
// A younger one may be another daemon's sharing the cache and stays.
func TestInitrdForEarlierAgentsIsPruned(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.paths.CacheDir, "initrd")
	os.MkdirAll(dir, 0o700)
	prefix := config.DefaultKernelName + "-6.1-test-"
	stale := filepath.Join(dir, prefix+"0123456789ab.cpio")
	other := filepath.Join(dir, "other-6.1-test-0123456789ab.cpio")
	notOurs := filepath.Join(dir, prefix+"notes.txt")
	young := filepath.Join(dir, prefix+"ba9876543210.cpio")
	for _, p := range []string{stale, other, notOurs, young} {
		must(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	twoHours := time.Now().Add(-2 * time.Hour)
	must(t, os.Chtimes(stale, twoHours, twoHours))
	vm := h.create("fresh")
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale initramfs kept: %v", err)
	}
	for _, p := range []string{other, notOurs, young, h.drv.Machine(vm.ID).Spec().Initrd} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
