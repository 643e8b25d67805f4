package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// A parent whose RAM is host-readable shared memory (QEMU's memfd; the
// fake's SharedRAM) is forked without a template VMM: the instant copies
// its memory into the fork point and every child maps that file
// privately. A fork of such a child (its RAM is a private file mapping)
// falls back to the template. A save that fails leaves the parent running
// and nothing behind.
func TestForkOfSharedRAMParentNeedsNoTemplate(t *testing.T) {
	h, _ := newForkHarness(t, nil)
	h.drv.SharedRAM = true
	dev := h.create("dev")
	starts := h.drv.Starts
	res, err := h.fork(api.ForkParams{Name: "dev", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.drv.Starts - starts; got != 3 {
		t.Errorf("%d VMMs started for 3 children: a template was made", got)
	}
	// children map the daemon's memfd (a /proc/self/fd path), closed
	// once the fork is done
	last := h.drv.LastSpec()
	if last.Memory.Shared || !strings.HasPrefix(last.Memory.File, "/proc/self/fd/") || filepath.Base(last.Restore) != "state" ||
		!strings.HasSuffix(filepath.Dir(last.Restore), ".tmp") {
		t.Errorf("a child's spec: memory %+v, restore %s", last.Memory, last.Restore)
	}
	if l, err := os.Readlink(last.Memory.File); err == nil && strings.Contains(l, "banger-fork") {
		t.Errorf("the fork point's memfd is still open: %s", l)
	}
	if left := leftovers(t, h.paths.VMDir(dev.ID)); len(left) != 0 {
		t.Errorf("fork point left behind: %v", left)
	}
	for _, c := range res.Children {
		h.echo(c.Name, "child "+c.Name)
	}
	h.echo("dev", "parent alive")

	// a child's RAM is its private mapping of the fork point's file: its
	// own fork goes through the template
	starts = h.drv.Starts
	if _, err := h.fork(api.ForkParams{Name: "dev-fork-1", Count: 2, As: "g"}); err != nil {
		t.Fatal(err)
	}
	if got := h.drv.Starts - starts; got != 3 {
		t.Errorf("fork of a child: %d VMMs started, want the template + 2", got)
	}
	if last := h.drv.LastSpec(); filepath.Base(last.Restore) != "shared" {
		t.Errorf("a grandchild restored %s, not the template's state", last.Restore)
	}

	h.drv.SaveErr = errors.New("disk on fire")
	if _, err := h.fork(api.ForkParams{Name: "dev", Count: 2, As: "x"}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("fork with a failing save: %v", err)
	}
	h.drv.SaveErr = nil
	if got := h.names(); got["dev"] != store.StateRunning || len(got) != 6 {
		t.Fatalf("vms after a failed fork: %v", got)
	}
	if left := leftovers(t, h.paths.VMDir(dev.ID)); len(left) != 0 {
		t.Errorf("fork point left behind: %v", left)
	}
	h.echo("dev", "still running")
}
