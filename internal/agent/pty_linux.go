package agent

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// openPTY allocates a pseudo-terminal of size ws. The master is opened
// non-blocking so that it is pollable: read deadlines then work on it as
// on the pipes of a plain exec (creack/pty hands out a blocking master).
func openPTY(ws proto.WinSize) (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	fail := func(err error) (*os.File, *os.File, error) {
		master.Close()
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("unlock pty: %w", err))
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		return fail(fmt.Errorf("pty number: %w", err))
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", name, err))
	}
	slave = os.NewFile(uintptr(sfd), name)
	if err := setWinSize(master, ws); err != nil {
		slave.Close()
		return fail(err)
	}
	return master, slave, nil
}

// setWinSize sets a terminal's size; the foreground process group gets
// SIGWINCH.
func setWinSize(f *os.File, ws proto.WinSize) error {
	if ws.Rows == 0 || ws.Cols == 0 {
		ws = proto.WinSize{Rows: 24, Cols: 80}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols})
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set terminal size: %w", serr)
	}
	return nil
}
