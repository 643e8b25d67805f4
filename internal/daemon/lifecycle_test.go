package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

func TestSetResizesStoppedVMOnly(t *testing.T) {
	h := newHarness(t)
	vm := h.create("sized")
	if err := h.call(api.MethodVMSet, api.SetParams{Name: "sized", VCPU: 2}, nil); !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("set on a running VM: %v", err)
	}
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "sized"}, nil))
	if err := h.call(api.MethodVMSet, api.SetParams{Name: "sized", DiskSize: "512M"}, nil); !isCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), "only grow") {
		t.Fatalf("shrink: %v", err)
	}
	var got api.VM
	must(t, h.call(api.MethodVMSet, api.SetParams{Name: "sized", VCPU: 3, MemoryMiB: 768, DiskSize: "2G"}, &got))
	if got.VCPU != 3 || got.MemoryMiB != 768 || got.DiskBytes != 2<<30 {
		t.Fatalf("after set: %+v", got)
	}
	work := filepath.Join(h.paths.VMDir(vm.ID), "work.ext4")
	fi, err := os.Stat(work)
	must(t, err)
	if fi.Size() != 2<<30 {
		t.Errorf("work disk is %d bytes", fi.Size())
	}
	// The host only extends the file: the filesystem the guest wrote is
	// left as it was, for the guest to grow at its next boot.
	out, err := exec.Command("dumpe2fs", "-h", work).CombinedOutput()
	must(t, err)
	if !strings.Contains(string(out), fmt.Sprintf("Block count:              %d", (1<<30)/4096)) {
		t.Errorf("the host touched the filesystem:\n%s", out)
	}
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "sized"}, nil))
	if spec := h.drv.Machine(vm.ID).Spec(); spec.VCPU != 3 || spec.MemoryMiB != 768 {
		t.Errorf("restarted with %d vcpu %d MiB", spec.VCPU, spec.MemoryMiB)
	}
}

func TestNoWaitReturnsReservedVM(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.drv.StartHook = func(ctx context.Context, spec vmm.Spec) error {
		<-release
		return nil
	}
	var vm api.VM
	must(t, h.call(api.MethodVMCreate, api.CreateParams{NoWait: true}, &vm))
	if vm.Name == "" || vm.IP == "" || vm.State == store.StateRunning {
		t.Fatalf("no-wait create returned %+v", vm)
	}
	close(release)
	waitState(t, h, vm.Name, store.StateRunning)
}

func waitState(t *testing.T, h *harness, name, state string) api.VM {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got api.VM
		must(t, h.call(api.MethodVMShow, api.NameParams{Name: name}, &got))
		if got.State == state {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s, want %s", name, got.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParallelCreatesGetDistinctAddresses(t *testing.T) {
	h := newHarness(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.call(api.MethodVMCreate, api.CreateParams{Name: fmt.Sprintf("p%d", i)}, nil)
		}()
	}
	wg.Wait()
	var vms []api.VM
	must(t, h.call(api.MethodVMList, nil, &vms))
	ips := map[string]bool{}
	for _, err := range errs {
		must(t, err)
	}
	for _, v := range vms {
		ips[v.IP] = true
	}
	if len(vms) != 3 || len(ips) != 3 {
		t.Fatalf("vms %v", vms)
	}
}

func TestStatsAndPortsComeFromTheAgent(t *testing.T) {
	h := newHarness(t)
	h.create("obs")
	var s api.VMStats
	must(t, h.call(api.MethodVMStats, api.NameParams{Name: "obs"}, &s))
	if s.CPUs < 1 || s.MemTotalBytes == 0 || s.UptimeSeconds <= 0 || s.MemUsedBytes > s.MemTotalBytes {
		t.Errorf("stats %+v", s)
	}
	var ports []api.Port
	must(t, h.call(api.MethodVMPorts, api.NameParams{Name: "obs"}, &ports))
	// The fake guest is this host: the daemon's own unix socket is not a
	// port, but the list must at least decode; sshd-less hosts may list
	// nothing, so only the shape is checked here. Real guests are checked
	// end to end.
	for _, p := range ports {
		if p.Port <= 0 || p.Proto == "" {
			t.Errorf("bad port %+v", p)
		}
	}
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "obs"}, nil))
	if err := h.call(api.MethodVMStats, api.NameParams{Name: "obs"}, nil); !isCode(err, api.CodeConflict) {
		t.Errorf("stats of a stopped VM: %v", err)
	}
}

func TestRestart(t *testing.T) {
	h := newHarness(t)
	vm := h.create("again")
	var got api.VM
	must(t, h.call(api.MethodVMRestart, api.NameParams{Name: "again"}, &got))
	if got.State != store.StateRunning || h.drv.Starts != 2 || !h.net.TAPExists(tapName(vm.ID)) {
		t.Fatalf("after restart %+v starts %d", got, h.drv.Starts)
	}
}
