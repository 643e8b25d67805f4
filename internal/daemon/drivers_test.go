package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/hostnet"
)

// A daemon given no driver (bangerd itself) builds the real ones and
// picks a default; tests inject one, so only this one covers it.
func TestNewWithoutInjectedDriverUsesTheRealOnes(t *testing.T) {
	root := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "bgd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	paths := config.Paths{ConfigDir: filepath.Join(root, "config"), StateDir: filepath.Join(root, "state"),
		CacheDir: filepath.Join(root, "cache"), RuntimeDir: filepath.Join(rt, "banger")}
	cfg, _ := config.Load(filepath.Join(root, "none.toml"))
	cfg.VMM = "qemu"
	d, err := New(context.Background(), Options{Paths: paths, Config: cfg, Net: hostnet.NewFake(netip.MustParsePrefix("10.9.0.0/24"))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.lockFile.Close()
	defer d.store.Close()
	if name, why, _ := d.svc.VMs.VMM(); name != "qemu" || why == "" {
		t.Fatalf("default vmm %q (%q)", name, why)
	}
}
