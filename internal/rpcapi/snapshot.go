package rpcapi

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/vms"
)

// SnapshotHandlers are the vm.pause/resume and vm.snapshot.* methods
// (vm.stop's save and vm.start's cold are in vm.go).
func SnapshotHandlers(s *vms.Service) Handlers {
	return Handlers{
		api.MethodVMPause: Quick(func(ctx context.Context, p api.NameParams) (api.VM, error) {
			return s.Pause(ctx, p.Name)
		}),
		api.MethodVMResume: Typed(func(ctx context.Context, p api.NameParams, r progress.Reporter) (api.VM, error) {
			return s.Resume(ctx, p.Name, r)
		}),
		api.MethodVMSnapshotCreate: Typed(s.SnapshotCreate),
		api.MethodVMSnapshotList: Quick(func(ctx context.Context, p api.NameParams) ([]api.Snapshot, error) {
			return s.SnapshotList(ctx, p.Name)
		}),
		api.MethodVMSnapshotRestore: Typed(s.SnapshotRestore),
		api.MethodVMSnapshotDelete:  Quick(s.SnapshotDelete),
	}
}
