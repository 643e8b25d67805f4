package client

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
)

// Pause, save and snapshots (issue 13).

// VMPause stops a running VM's vCPUs (vm.pause).
func (c *Client) VMPause(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMPause, api.NameParams{Name: name}, onProgress)
}

// VMResume continues a paused VM and sets its clock (vm.resume).
func (c *Client) VMResume(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMResume, api.NameParams{Name: name}, onProgress)
}

// VMStopSave saves a VM's whole state to disk and ends its VMM (vm.stop
// with save); the next VMStart continues it.
func (c *Client) VMStopSave(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMStop, api.StopParams{Name: name, Save: true}, onProgress)
}

// VMStartCold boots a VM from its disks, discarding a saved state
// (vm.start with cold).
func (c *Client) VMStartCold(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMStart, api.StartParams{Name: name, Cold: true}, onProgress)
}

// VMSnapshotCreate snapshots a running or paused VM (vm.snapshot.create);
// an empty p.Snapshot names it from the time.
func (c *Client) VMSnapshotCreate(ctx context.Context, p api.SnapshotParams, onProgress func(api.Progress)) (api.Snapshot, error) {
	return call[api.Snapshot](ctx, c, api.MethodVMSnapshotCreate, p, onProgress)
}

// VMSnapshotList lists a VM's snapshots (vm.snapshot.list).
func (c *Client) VMSnapshotList(ctx context.Context, name string) ([]api.Snapshot, error) {
	return call[[]api.Snapshot](ctx, c, api.MethodVMSnapshotList, api.NameParams{Name: name}, nil)
}

// VMSnapshotRestore takes a VM back to a snapshot (vm.snapshot.restore);
// p.Force ends a running VM first.
func (c *Client) VMSnapshotRestore(ctx context.Context, p api.SnapshotParams, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMSnapshotRestore, p, onProgress)
}

// VMSnapshotDelete removes one snapshot (vm.snapshot.delete).
func (c *Client) VMSnapshotDelete(ctx context.Context, p api.SnapshotParams) (api.Snapshot, error) {
	return call[api.Snapshot](ctx, c, api.MethodVMSnapshotDelete, p, nil)
}
