package doctor

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/store"
)

func TestDoctorShowsSnapshotDiskUse(t *testing.T) {
	ctx := context.Background()
	paths := config.Paths{StateDir: t.TempDir(), CacheDir: t.TempDir()}
	st, err := store.Open(ctx, paths.Database())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutImage(ctx, store.Image{Name: "img", Path: "/i", SizeBytes: 1, Source: "t"}))
	must(st.PutKernel(ctx, store.Kernel{Name: "krn", Dir: "/k", Release: "6.1", Source: "t"}))
	vm := store.VM{ID: "v1", Name: "dev", Image: "img", Kernel: "krn", VMM: "qemu", VCPU: 1, MemoryMiB: 512, State: store.StateSaved}
	must(st.ReserveVM(ctx, &vm, netip.MustParsePrefix("10.1.0.0/24"), netip.MustParseAddr("10.1.0.1")))
	for _, n := range []string{"a", "b"} {
		must(st.PutSnapshot(ctx, store.Snapshot{VMID: "v1", Name: n, CreatedAt: time.Now(), Bytes: 3 << 20, VMM: "qemu"}))
	}
	saved := filepath.Join(paths.StateDir, "vms", "v1", "saved")
	must(os.MkdirAll(saved, 0o700))
	must(os.WriteFile(filepath.Join(saved, "state"), make([]byte, 1<<20), 0o600))
	tmpl := filepath.Join(paths.CacheDir, "warm", "0123abcd")
	must(os.MkdirAll(tmpl, 0o700))
	must(os.WriteFile(filepath.Join(tmpl, "mem"), make([]byte, 2<<20), 0o600))
	c := snapshotCheck(ctx, st, paths)
	if c.Status != "pass" || !strings.Contains(c.Detail, "2 snapshots of 1 VMs use 6 MiB") || !strings.Contains(c.Detail, "1 saved VMs use 1") || !strings.Contains(c.Detail, "free in") || !strings.Contains(c.Detail, "1 warm-start templates use 2") {
		t.Fatalf("got %+v", c)
	}
}
