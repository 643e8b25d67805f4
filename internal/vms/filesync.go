package vms

import (
	"context"
	"os"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/progress"
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
func (s *Service) syncFiles(ctx context.Context, vm store.VM, in *instance, r progress.Reporter) {
	home, _ := os.UserHomeDir()
	sync := workspace.NewSync(ctx, s.Config.FileSyncEntries(), home)
	for _, w := range sync.Warnings {
		progress.Stage(r, "file_sync", "warning: "+w)
		s.Log.Warn("file_sync", "vm", vm.Name, "warning", w)
	}
	if sync.Empty() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	ac, err := in.agentClient(ctx)
	if err == nil {
		_, err = ac.CopyIn(ctx, proto.CopyInParams{Dir: s.GuestFS("/"), DirMode: 0o755},
			func(tw *client.TarWriter) error { return sync.Archive(tw) })
	}
	if err != nil {
		progress.Stage(r, "file_sync", "warning: "+err.Error())
		s.Log.Warn("file_sync failed", "vm", vm.Name, "err", err)
	}
}
