package vms

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/guestssh"
	"github.com/banger-dev/banger/internal/hostnet"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

func api0() api.VM { return api.VM{Name: "x"} }

type fakeArtifacts struct{ initrds int }

func (f *fakeArtifacts) BootArtifacts(context.Context, string, progress.Reporter) (store.Image, store.Kernel, error) {
	panic("not used")
}

func (f *fakeArtifacts) Initrd(_ context.Context, k store.Kernel, _ progress.Reporter) (string, error) {
	f.initrds++
	return filepath.Join(k.Dir, "initrd"), nil
}

func (f *fakeArtifacts) ModulesDisk(store.Kernel) (vmm.Disk, proto.GuestDisk, bool) {
	return vmm.Disk{}, proto.GuestDisk{}, false
}

// machineSpec builds the machine from the plan alone: the service has no
// store here, so a re-read of the image or kernel row would panic.
func TestMachineSpecUsesThePlanOnly(t *testing.T) {
	root := t.TempDir()
	paths := config.Paths{StateDir: filepath.Join(root, "s"), RuntimeDir: filepath.Join(root, "r")}
	art := &fakeArtifacts{}
	s := New(Deps{Paths: paths, Keys: &guestssh.Keys{Dir: filepath.Join(root, "ssh")},
		Net: hostnet.NewFake(netip.MustParsePrefix("10.9.0.0/24")), Artifacts: art})
	vm := store.VM{ID: "abc123", Name: "dev", Image: "img", Kernel: "k", IP: "10.9.0.2", MAC: "52:54:00:00:00:01", VCPU: 1, MemoryMiB: 256}
	dir := s.dir(vm.ID)
	priv, pub, err := guestssh.NewKeyPair("root@dev")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir.Path(), 0o700)
	os.WriteFile(dir.HostKey(), priv, 0o600)
	os.WriteFile(dir.HostKeyPub(), pub, 0o644)
	plan := BootPlan{Image: store.Image{Name: "img", Path: "/images/img.ext4", Init: store.InitNone},
		Kernel: store.Kernel{Name: "k", Dir: "/kernels/k"}}
	spec, err := s.machineSpec(context.Background(), vm, plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Disks[0].Path != "/images/img.ext4" || spec.Kernel != "/kernels/k/vmlinuz" || spec.Initrd != "/kernels/k/initrd" || art.initrds != 1 {
		t.Fatalf("spec %+v", spec)
	}
	if spec.Dir != dir.Runtime() || spec.ConsoleLog != dir.ConsoleLog() || spec.Net.TAP != TAPName(vm.ID) {
		t.Fatalf("spec paths %+v", spec)
	}
	f, err := os.Open(dir.ConfigDrive())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := proto.DecodeConfigDrive(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Init != noInitPath || cfg.Hostname != "dev" || cfg.Net.Address != "10.9.0.2/24" {
		t.Fatalf("config drive %+v", cfg)
	}
}

func TestBootPlanGuestInit(t *testing.T) {
	for init, want := range map[string]string{store.InitNone: noInitPath, "": "", "/sbin/init": "/sbin/init"} {
		if got := (BootPlan{Image: store.Image{Init: init}}).guestInit(); got != want {
			t.Errorf("Init %q: guestInit = %q, want %q", init, got, want)
		}
	}
}
