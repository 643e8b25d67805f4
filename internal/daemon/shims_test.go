package daemon

import "github.com/banger-dev/banger/internal/vms"

// Names the daemon's socket-level tests share with the vms service.
var tapName = vms.TAPName

const (
	errDaemonStopped = vms.ErrDaemonStopped
	stageReserved    = vms.StageReserved
	interruptedExit  = vms.InterruptedExit
)
