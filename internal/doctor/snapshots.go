package doctor

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/vmdir"
)

// snapshotCheck is the disk use of VM snapshots (from the store) and of
// saved states (vm stop --save: saved/ in a VM's directory), with the
// free space left where they live.
func snapshotCheck(ctx context.Context, st *store.Store, paths config.Paths) Check {
	sns, err := st.ListSnapshots(ctx, "")
	if err != nil {
		return Check{"warn", "snapshots", "unreadable: " + err.Error(), ""}
	}
	var snapBytes int64
	vms := map[string]bool{}
	for _, sn := range sns {
		snapBytes += sn.Bytes
		vms[sn.VMID] = true
	}
	saved, _ := filepath.Glob(vmdir.For(paths, "*").Saved())
	var savedBytes int64
	for _, d := range saved {
		savedBytes += vmdir.Allocated(d)
	}
	detail := fmt.Sprintf("%d snapshots of %d VMs use %s; %d saved VMs use %s", len(sns), len(vms),
		config.FormatSize(snapBytes), len(saved), config.FormatSize(savedBytes))
	// warm-start templates (ARCHITECTURE.md, "Warm starts")
	warm, _ := filepath.Glob(filepath.Join(paths.WarmDir(), "*"))
	var warmBytes int64
	for _, d := range warm {
		warmBytes += vmdir.Allocated(d)
	}
	detail += fmt.Sprintf("; %d warm-start templates use %s", len(warm), config.FormatSize(warmBytes))
	var fs syscall.Statfs_t
	if syscall.Statfs(paths.StateDir, &fs) == nil {
		detail += fmt.Sprintf(" (%s free in %s)", config.FormatSize(int64(fs.Bavail)*fs.Bsize), paths.StateDir)
	}
	return Check{"pass", "snapshots", detail, ""}
}
