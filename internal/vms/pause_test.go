package vms

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmm"
)

// plainMachine is a VMM machine without vmm.Snapshotter.
type plainMachine struct{ done chan struct{} }

func (m plainMachine) Handles() vmm.Handles                        { return vmm.Handles{PID: 1} }
func (m plainMachine) DialAgent(context.Context) (net.Conn, error) { return nil, net.ErrClosed }
func (m plainMachine) Done() <-chan struct{}                       { return m.done }
func (m plainMachine) Shutdown(context.Context) error              { return nil }
func (m plainMachine) Kill() error                                 { return nil }

func TestDriverWithoutSnapshotterIsNotSupported(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.PutImage(ctx, store.Image{Name: "img", Path: "/i", SizeBytes: 1, Source: "t"})
	st.PutKernel(ctx, store.Kernel{Name: "krn", Dir: "/k", Release: "6.1", Source: "t"})
	vm := store.VM{ID: "v1", Name: "dev", Image: "img", Kernel: "krn", VMM: "plain", VCPU: 1, MemoryMiB: 512, State: store.StateRunning}
	if err := st.ReserveVM(ctx, &vm, netip.MustParsePrefix("10.1.0.0/24"), netip.MustParseAddr("10.1.0.1")); err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Store: st, Paths: config.Paths{StateDir: t.TempDir(), RuntimeDir: t.TempDir()}})
	s.setInstance("v1", &instance{m: plainMachine{done: make(chan struct{})}})
	calls := map[string]func() error{
		"pause":     func() error { _, err := s.Pause(ctx, "dev"); return err },
		"resume":    func() error { _, err := s.Resume(ctx, "dev", nil); return err },
		"stop-save": func() error { _, err := s.StopSave(ctx, "dev", nil); return err },
		"snapshot": func() error {
			_, err := s.SnapshotCreate(ctx, api.SnapshotParams{Name: "dev", Snapshot: "a"}, nil)
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err == nil || !strings.Contains(err.Error(), "not supported by the plain driver") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got, _ := st.GetVM(ctx, "dev"); got.State != store.StateRunning {
		t.Errorf("state changed to %s", got.State)
	}
}
