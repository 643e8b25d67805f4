package client

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// ErrForeignPeer means the process behind the socket is neither this
// user nor root.
var ErrForeignPeer = errors.New("the socket is served by another user")

// checkPeer reads the peer's credentials (SO_PEERCRED) and accepts only
// our own uid or root, as the daemon does for its clients.
func checkPeer(conn net.Conn, self int) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("not a unix socket: %T", conn)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("read peer credentials: %w", cerr)
	}
	return allowedPeer(int(cred.Uid), int(cred.Pid), self)
}

func allowedPeer(uid, pid, self int) error {
	if uid == self || uid == 0 {
		return nil
	}
	return fmt.Errorf("%w: uid %d (pid %d), not %d or root", ErrForeignPeer, uid, pid, self)
}
