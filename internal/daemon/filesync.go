package daemon

import (
	"context"
	"os"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/workspace"
)

// syncTimeout bounds the file sync of one boot: it copies config files,
// not repositories.
const syncTimeout = time.Minute

// syncFiles copies the [[file_sync]] entries and the host's git identity
// into a guest whose agent just became ready; it runs at every start. A
// failure is a warning, never a failed boot: the VM is usable without
// the files.
func (d *Daemon) syncFiles(ctx context.Context, vm store.VM, in *instance, progress progressFn) {
	home, _ := os.UserHomeDir()
	s := workspace.NewSync(ctx, d.cfg.FileSyncEntries(), home)
	for _, w := range s.Warnings {
		progress("file_sync", "warning: "+w)
		d.log.Warn("file_sync", "vm", vm.Name, "warning", w)
	}
	if s.Empty() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	ac, err := in.agentClient(ctx)
	if err == nil {
		_, err = ac.CopyIn(ctx, proto.CopyInParams{Dir: guestFS("/"), DirMode: 0o755},
			func(tw *client.TarWriter) error { return s.Archive(tw) })
	}
	if err != nil {
		progress("file_sync", "warning: "+err.Error())
		d.log.Warn("file_sync failed", "vm", vm.Name, "err", err)
	}
}
