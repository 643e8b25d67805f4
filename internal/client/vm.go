package client

import (
	"context"

	"github.com/banger-dev/banger/internal/api"
)

// VM lifecycle, exec, copy and logs. Methods that take onProgress pass it
// the daemon's progress events (nil: ignore them).

// VMCreate creates a VM (vm.create) and returns it once it is up, or,
// with p.NoWait, once it is reserved.
func (c *Client) VMCreate(ctx context.Context, p api.CreateParams, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMCreate, p, onProgress)
}

// VMList lists every VM (vm.list).
func (c *Client) VMList(ctx context.Context) ([]api.VM, error) {
	return call[[]api.VM](ctx, c, api.MethodVMList, nil, nil)
}

// VMShow shows one VM by exact name, id or unique prefix (vm.show).
func (c *Client) VMShow(ctx context.Context, name string) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMShow, api.NameParams{Name: name}, nil)
}

// VMStart boots a stopped VM (vm.start).
func (c *Client) VMStart(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMStart, api.NameParams{Name: name}, onProgress)
}

// VMStop shuts a VM down, keeping its disks (vm.stop).
func (c *Client) VMStop(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMStop, api.NameParams{Name: name}, onProgress)
}

// VMRestart stops a VM gracefully and boots it again (vm.restart).
func (c *Client) VMRestart(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMRestart, api.NameParams{Name: name}, onProgress)
}

// VMDelete deletes a VM and everything it stored (vm.delete); name is an
// exact name or id.
func (c *Client) VMDelete(ctx context.Context, name string, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMDelete, api.NameParams{Name: name}, onProgress)
}

// VMSet resizes a stopped VM (vm.set).
func (c *Client) VMSet(ctx context.Context, p api.SetParams, onProgress func(api.Progress)) (api.VM, error) {
	return call[api.VM](ctx, c, api.MethodVMSet, p, onProgress)
}

// VMStats is a running VM's resource use as last polled (vm.stats).
func (c *Client) VMStats(ctx context.Context, name string) (api.VMStats, error) {
	return call[api.VMStats](ctx, c, api.MethodVMStats, api.NameParams{Name: name}, nil)
}

// VMPorts lists the sockets listening in a running VM (vm.ports).
func (c *Client) VMPorts(ctx context.Context, name string) ([]api.Port, error) {
	return call[[]api.Port](ctx, c, api.MethodVMPorts, api.NameParams{Name: name}, nil)
}

// VMSSH says how to reach a VM with OpenSSH (vm.ssh); p.Wait waits for a
// booting VM's sshd, p.Check probes it once.
func (c *Client) VMSSH(ctx context.Context, p api.SSHParams, onProgress func(api.Progress)) (api.SSHInfo, error) {
	return call[api.SSHInfo](ctx, c, api.MethodVMSSH, p, onProgress)
}

// VMRun creates (or reuses) a VM and starts a command in it (vm.run).
// It returns the VM and the connection, positioned at the exec stream
// (agent/proto frames, see proto.PumpExec); the caller closes it.
func (c *Client) VMRun(ctx context.Context, p api.RunParams, onProgress func(api.Progress)) (*Stream, api.VM, error) {
	var vm api.VM
	conn, err := c.Stream(ctx, api.MethodVMRun, p, &vm, onProgress)
	return conn, vm, err
}

// VMExec starts a command in a running VM through its agent (vm.exec);
// the connection is positioned at the exec stream, as for VMRun.
func (c *Client) VMExec(ctx context.Context, p api.ExecParams, onProgress func(api.Progress)) (*Stream, api.VM, error) {
	var vm api.VM
	conn, err := c.Stream(ctx, api.MethodVMExec, p, &vm, onProgress)
	return conn, vm, err
}

// VMCopyIn opens a copy into a VM (vm.cp.in): the caller writes a tar
// archive and the agent's copy trailer, then reads the agent's result
// line (agent/proto copy_in).
func (c *Client) VMCopyIn(ctx context.Context, p api.CopyInParams) (*Stream, error) {
	return c.Stream(ctx, api.MethodVMCopyIn, p, nil, nil)
}

// VMCopyOut opens a copy out of a VM (vm.cp.out): the caller reads a tar
// archive and the agent's trailer line (agent/proto copy_out).
func (c *Client) VMCopyOut(ctx context.Context, p api.CopyOutParams) (*Stream, error) {
	return c.Stream(ctx, api.MethodVMCopyOut, p, nil, nil)
}

// VMLogs opens a VM's console log (vm.logs): the caller reads its bytes
// until the daemon closes the stream.
func (c *Client) VMLogs(ctx context.Context, p api.LogsParams) (*Stream, error) {
	return c.Stream(ctx, api.MethodVMLogs, p, nil, nil)
}
