package vmm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// LockDisks takes an exclusive flock on each writable disk and returns the
// open files. The caller passes them to Driver.Start in Spec.Inherit: the
// VMM process inherits them, so the lock lives exactly as long as the VMM
// (the open file description, and with it the lock, outlives the daemon's
// copy, which the caller closes once Start returns). A disk that another
// process holds is refused with a *DiskBusyError naming it: two VMMs on
// one disk corrupt it.
func LockDisks(disks []Disk) ([]*os.File, error) {
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		CloseAll(files)
		return nil, err
	}
	for _, d := range disks {
		if d.ReadOnly {
			continue
		}
		f, err := os.OpenFile(d.Path, os.O_RDWR, 0)
		if err != nil {
			return fail(fmt.Errorf("lock disk: %w", err))
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return fail(&DiskBusyError{Path: d.Path, PIDs: HoldersOf(d.Path)})
			}
			return fail(fmt.Errorf("lock disk %s: %w", d.Path, err))
		}
		files = append(files, f)
	}
	return files, nil
}

// CloseAll closes files, ignoring errors.
func CloseAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
