package daemon

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/workspace"
)

// TestRunWithRepositoryAbandonedMidArchiveLeavesNothing: Ctrl-C while
// vm run --rm's archive is on its way (half of it sent) ends the run,
// and the --rm teardown removes the VM: nothing is left.
func TestRunWithRepositoryAbandonedMidArchiveLeavesNothing(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	spec, arch := archiveOf(t, gitRepo(t), workspace.Options{}, "")
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	importing, errc := make(chan struct{}), make(chan error, 1)
	go func() {
		_, _, err := h.client.VMRunWorkspace(ctx, api.RunParams{ExecRequest: api.ExecRequest{Argv: []string{"true"}}, Remove: true, Create: api.CreateParams{Name: "once"}, Workspace: &spec},
			&gatedReader{r: bytes.NewReader(arch), n: len(arch) / 2, release: release}, func(p api.Progress) {
				if p.Stage == "workspace" {
					close(importing)
				}
			})
		errc <- err
	}()
	select {
	case <-importing:
	case err := <-errc:
		t.Fatalf("the run ended before its import: %v", err)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("an abandoned run succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var vms []api.VM
		must(t, h.call(api.MethodVMList, nil, &vms))
		if len(vms) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VMs left after the abandoned run: %v", vms)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.assertNoTrace(h.drv.LastSpec().ID)
	guestEmpty(t, root)
}
