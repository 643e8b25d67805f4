package vmdir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/vmm"
	"github.com/banger-dev/banger/internal/vmm/qemu"
)

// The layout is what earlier bangers wrote: a daemon upgrade must find
// the VMs (handles, disks) an older one left running.
func TestLayoutMatchesTheOnDiskNames(t *testing.T) {
	p := config.Paths{StateDir: "/s", RuntimeDir: "/r"}
	d := For(p, "ab12")
	for got, want := range map[string]string{
		d.Path(): "/s/vms/ab12", d.Runtime(): "/r/vms/ab12",
		d.Overlay(): "/s/vms/ab12/overlay.ext4", d.Work(): "/s/vms/ab12/work.ext4",
		d.ConfigDrive(): "/s/vms/ab12/config.img", d.HostKey(): "/s/vms/ab12/ssh_host_ed25519_key",
		d.HostKeyPub(): "/s/vms/ab12/ssh_host_ed25519_key.pub", d.ConsoleLog(): "/s/vms/ab12/console.log",
		d.BootStall(): "/s/vms/ab12/boot-stall.txt", d.Handles(): "/r/vms/ab12/handles.json",
		d.LaunchIntent(): "/r/vms/ab12/launch.json", d.QEMUPIDFile(): filepath.Join("/r/vms/ab12", qemu.PIDFile),
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if d.Path() != p.VMDir("ab12") || d.Runtime() != p.VMRuntimeDir("ab12") {
		t.Errorf("layout disagrees with config.Paths")
	}
}

func TestHandlesAndLaunchIntentRoundTrip(t *testing.T) {
	root := t.TempDir()
	d := For(config.Paths{StateDir: filepath.Join(root, "s"), RuntimeDir: filepath.Join(root, "r")}, "x")
	if d.LaunchInProgress() {
		t.Fatal("launch in progress before any intent")
	}
	if err := d.WriteLaunchIntent("qemu", "banger-x"); err != nil {
		t.Fatal(err)
	}
	if !d.LaunchInProgress() {
		t.Fatal("intent not recorded")
	}
	h := vmm.Handles{PID: 42, StartTicks: 7, ConsoleLog: d.ConsoleLog()}
	if err := d.WriteHandles(h); err != nil {
		t.Fatal(err)
	}
	got, err := d.ReadHandles()
	if err != nil || got.PID != 42 || got.ConsoleLog != h.ConsoleLog {
		t.Fatalf("ReadHandles = %+v, %v", got, err)
	}
	ents, _ := os.ReadDir(d.Runtime())
	for _, e := range ents {
		if e.Name()[0] == '.' {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
