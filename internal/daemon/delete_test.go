package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
)

// A delete that cannot remove the VM's TAP keeps the row, marked failed
// with what is left, instead of orphaning the TAP; the next delete, once
// the TAP can go, finishes the job.
func TestDeleteKeepsRowUntilHostObjectsAreGone(t *testing.T) {
	h := newHarness(t)
	vm := h.create("stuck")
	h.net.DeleteTAPErr = errors.New("operation not permitted")
	err := h.call(api.MethodVMDelete, api.NameParams{Name: "stuck"}, nil)
	if err == nil || !strings.Contains(err.Error(), "operation not permitted") || !strings.Contains(err.Error(), "vm delete stuck") {
		t.Fatalf("first delete: %v", err)
	}
	var got api.VM
	must(t, h.call(api.MethodVMShow, api.NameParams{Name: "stuck"}, &got))
	if got.State != store.StateFailed || !strings.Contains(got.LastError, "delete incomplete") || !strings.Contains(got.LastError, tapName(vm.ID)) {
		t.Fatalf("after failed delete: %s %q", got.State, got.LastError)
	}
	if !h.net.TAPExists(tapName(vm.ID)) || h.drv.Running() != 0 {
		t.Fatalf("tap %v running %d", h.net.TAPs, h.drv.Running())
	}
	h.net.DeleteTAPErr = nil
	must(t, h.call(api.MethodVMDelete, api.NameParams{Name: "stuck"}, nil))
	h.assertNoTrace(vm.ID)
}
