package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func init() {
	ops[proto.OpSetTime] = func(s *Server, st net.Conn, req proto.Request) {
		var p proto.SetTimeParams
		if err := json.Unmarshal(req.Params, &p); err != nil || p.UnixNano <= 0 {
			replyData(st, nil, fmt.Errorf("settime: bad params %s", req.Params))
			return
		}
		ts := unix.NsecToTimespec(p.UnixNano)
		replyData(st, struct{}{}, setClock(&ts))
	}
	ops[proto.OpReseed] = func(s *Server, st net.Conn, req proto.Request) {
		var p proto.ReseedParams
		if err := json.Unmarshal(req.Params, &p); err != nil {
			replyData(st, nil, fmt.Errorf("reseed: bad params: %v", err))
			return
		}
		replyData(st, struct{}{}, reseed("/dev/urandom", p.Entropy))
	}
}

// setClock is unix.ClockSettime on CLOCK_REALTIME; tests replace it.
var setClock = func(ts *unix.Timespec) error {
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, ts); err != nil {
		return fmt.Errorf("settime: %w", err)
	}
	return nil
}

// reseed adds entropy to the kernel's pool, credited in full, and forces
// the CRNG to rekey (Linux ≥ 5.x: RNDRESEEDCRNG), through the random
// device at dev. Both ioctls need CAP_SYS_ADMIN: the agent runs as root.
func reseed(dev string, entropy []byte) error {
	if len(entropy) < proto.MinReseedBytes || len(entropy) > proto.MaxReseedBytes {
		return fmt.Errorf("reseed: %d bytes of entropy (want %d to %d)", len(entropy), proto.MinReseedBytes, proto.MaxReseedBytes)
	}
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reseed: %w", err)
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+len(entropy))
	*(*int32)(unsafe.Pointer(&info[0])) = int32(8 * len(entropy))
	*(*int32)(unsafe.Pointer(&info[4])) = int32(len(entropy))
	copy(info[8:], entropy)
	if err := ioctlPtr(f.Fd(), unix.RNDADDENTROPY, unsafe.Pointer(&info[0])); err != nil {
		return fmt.Errorf("reseed: RNDADDENTROPY: %w", err)
	}
	if err := ioctlPtr(f.Fd(), unix.RNDRESEEDCRNG, nil); err != nil {
		return fmt.Errorf("reseed: RNDRESEEDCRNG: %w", err)
	}
	return nil
}

func ioctlPtr(fd uintptr, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
