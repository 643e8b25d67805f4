package daemon

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
	"github.com/banger-dev/banger/internal/vmm"
)

const strayHelperEnv = "BANGER_TEST_STRAY_VMM"

// strayHelper is a stand-in VMM process: it holds the files it inherited
// (fd 3 on: the disks' flocks) and sleeps until killed.
func strayHelper() {
	for {
		time.Sleep(time.Hour)
	}
}

// spawnHolder starts a process that holds an exclusive flock on each of
// the VM's writable disks, as a VMM does; with marked, its argv carries
// the VM's marker (a VMM banger started), else it is some other process.
func spawnHolder(t *testing.T, h *harness, id string, marked bool) *exec.Cmd {
	t.Helper()
	var files []*os.File
	for _, n := range []string{"overlay.ext4", "work.ext4"} {
		f, err := os.OpenFile(filepath.Join(h.paths.VMDir(id), n), os.O_RDWR, 0)
		must(t, err)
		must(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
		files = append(files, f)
	}
	args := []string{"-holder"}
	if marked {
		args = append(args, "-name", vmm.Marker(id)) // as qemu's argv has it
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), strayHelperEnv+"=1")
	cmd.ExtraFiles = files
	must(t, cmd.Start())
	vmm.CloseAll(files) // the child holds the locks now
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })
	return cmd
}

func strayAlive(pid int) bool { return vmm.Alive(pid) }

// The crash window: the daemon started a VMM and died before writing
// handles.json. The VM is recorded as starting, a VMM carrying its marker
// holds its disks. The next daemon kills it, says so, and the VM starts.
func TestReconcileKillsVMMStartedBeforeHandles(t *testing.T) {
	h := newHarness(t)
	vm := h.create("crashy")
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "crashy"}, nil))
	h.stop()
	stray := spawnHolder(t, h, vm.ID, true)
	st, err := store.Open(context.Background(), h.paths.Database())
	must(t, err)
	must(t, st.SetVMState(context.Background(), vm.ID, store.StateStarting, ""))
	st.Close()
	must(t, vmdir.For(h.paths, vm.ID).WriteLaunchIntent("fake", vmm.Marker(vm.ID)))

	h.start()
	if strayAlive(stray.Process.Pid) {
		t.Fatalf("stray VMM pid %d still running after reconcile", stray.Process.Pid)
	}
	var got api.VM
	must(t, h.call(api.MethodVMShow, api.NameParams{Name: "crashy"}, &got))
	if got.State != store.StateFailed || !strings.Contains(got.LastError, strconv.Itoa(stray.Process.Pid)) || !strings.Contains(got.LastError, "killed") {
		t.Fatalf("after reconcile: %s %q", got.State, got.LastError)
	}
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "crashy"}, nil))
}

// A start while another process holds the VM's disks is refused, naming
// that process, and leaves the VM as it was; once it is gone, the VM
// starts. While the VM runs, its VMM holds the lock.
func TestStartRefusedWhileDiskLocked(t *testing.T) {
	h := newHarness(t)
	vm := h.create("locked")
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "locked"}, nil))
	holder := spawnHolder(t, h, vm.ID, false)
	starts := h.drv.Starts
	err := h.call(api.MethodVMStart, api.NameParams{Name: "locked"}, nil)
	if !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(holder.Process.Pid)) || !strings.Contains(err.Error(), "overlay.ext4") {
		t.Fatalf("start with a locked disk: %v", err)
	}
	var got api.VM
	must(t, h.call(api.MethodVMShow, api.NameParams{Name: "locked"}, &got))
	if got.State != store.StateStopped || h.drv.Starts != starts || h.net.TAPCount() != 0 {
		t.Fatalf("refused start changed things: state %s starts %d taps %d", got.State, h.drv.Starts-starts, h.net.TAPCount())
	}
	if !strayAlive(holder.Process.Pid) {
		t.Fatal("an unmarked process was killed")
	}
	holder.Process.Kill()
	for strayAlive(holder.Process.Pid) {
		time.Sleep(10 * time.Millisecond)
	}
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "locked"}, nil))
	// The running VM's VMM holds the lock: nobody else gets it.
	f, err := os.OpenFile(filepath.Join(h.paths.VMDir(vm.ID), "work.ext4"), os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		t.Fatal("the disk of a running VM is not locked")
	}
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "locked"}, nil))
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("the disk of a stopped VM is still locked: %v", err)
	}
}

// vm delete kills a stray VMM of the VM and leaves nothing.
func TestDeleteKillsStrayVMM(t *testing.T) {
	h := newHarness(t)
	vm := h.create("gone")
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "gone"}, nil))
	stray := spawnHolder(t, h, vm.ID, true)
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "gone"}, nil))
	if strayAlive(stray.Process.Pid) {
		t.Fatalf("stray VMM pid %d survived vm delete", stray.Process.Pid)
	}
	h.assertNoTrace(vm.ID)
}

// spawnMentioner starts a process that merely mentions the VM's marker in
// its argv (as `pgrep -f banger-ID` or `grep banger-ID daemon.log` do) and
// holds nothing.
func spawnMentioner(t *testing.T, id string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-holder", "pgrep", "-f", vmm.Marker(id))
	cmd.Env = append(os.Environ(), strayHelperEnv+"=1")
	must(t, cmd.Start())
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })
	return cmd
}

// A process whose argv merely contains the marker (a user's pgrep or grep
// for the VM) is not a VMM: start, reconcile and delete leave it alone.
func TestStrayMarkerIgnoresMentions(t *testing.T) {
	h := newHarness(t)
	vm := h.create("named")
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "named"}, nil))
	mention := spawnMentioner(t, vm.ID)
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "named"}, nil))
	h.stop()
	h.start()
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "named"}, nil))
	if !strayAlive(mention.Process.Pid) {
		t.Fatal("a process that only mentions the VM's marker was killed")
	}
}

// A hung guest whose VMM does not die is not restarted: a second VMM
// would inherit the same disk locks and write the disks beside it.
func TestHungBootNotRestartedWhileOldVMMLives(t *testing.T) {
	h := newHarness(t)
	h.drv.MuteStarts = 1
	h.drv.KillErr = errors.New("fake: pid 4243 did not exit after SIGKILL")
	err := h.call(api.MethodVMCreate, api.CreateParams{Name: "stuck"}, nil)
	if err == nil || !strings.Contains(err.Error(), "it is hung") || !strings.Contains(err.Error(), "not restarting it") {
		t.Fatalf("err = %v", err)
	}
	if h.drv.Starts != 1 {
		t.Fatalf("%d VMMs started on the disks of a VM whose first VMM is still alive", h.drv.Starts)
	}
	if m := h.drv.Machine(h.drv.LastSpec().ID); m != nil {
		m.Crash() // the stuck VMM ends after all
	}
}
