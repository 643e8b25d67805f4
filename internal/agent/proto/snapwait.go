package proto

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Warm starts: the snapshot point and the continue message.
//
// A VM booted with SnapWaitArg on its kernel command line is a template:
// its agent (PID 1 in the initramfs) loads only the modules the agent
// channel needs, opens the agent port, prints SnapPointMarker on the
// console and reads the port — before any disk, NIC or config drive has
// been probed. The host snapshots the guest there (its memory holds no
// per-VM identity yet) and quits it. Each VM restored from that snapshot
// is resumed and sent one continue line on the raw agent port, before any
// HELLO (yamux is not running yet):
//
//	BANGER-CONTINUE 1 <unix-nanoseconds> <entropy, hex>\n
//
// The agent sets the wall clock to the time (the snapshot's clock is
// stale), adds the entropy to the kernel's pool and forces a CRNG reseed
// (clones of one snapshot must not share random numbers), adopts the MAC
// of its own config for the NIC (the template's MAC is in the restored
// device state), then goes on booting as a cold VM does: the other
// modules, its own config drive and disks, hostname, keys, network, init.
// Lines that are not a valid continue message are logged and skipped.
// After the continue line the host talks to the agent as after a cold
// boot: HELLO/READY once the serving agent is up.
const (
	SnapWaitArg     = "banger.snapwait"
	SnapPointMarker = "BANGER-SNAPSHOT-POINT"
	ContinuePrefix  = "BANGER-CONTINUE "
	// ContinueVersion is the continue line's format version.
	ContinueVersion = 1
)

// Continue is the continue message.
type Continue struct {
	Time    time.Time
	Entropy []byte // MinReseedBytes to MaxReseedBytes
}

// Line is the message as sent, newline included.
func (c Continue) Line() []byte {
	return fmt.Appendf(nil, "%s%d %d %s\n", ContinuePrefix, ContinueVersion, c.Time.UnixNano(), hex.EncodeToString(c.Entropy))
}

// ParseContinue parses what follows ContinuePrefix on a continue line.
func ParseContinue(rest string) (Continue, error) {
	f := strings.Fields(rest)
	if len(f) != 3 {
		return Continue{}, fmt.Errorf("continue message: %d fields, want 3 (version, time, entropy)", len(f))
	}
	if v, err := strconv.Atoi(f[0]); err != nil || v != ContinueVersion {
		return Continue{}, fmt.Errorf("continue message: version %q, want %d", f[0], ContinueVersion)
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || ns <= 0 {
		return Continue{}, fmt.Errorf("continue message: bad time %q", f[1])
	}
	e, err := hex.DecodeString(f[2])
	if err != nil {
		return Continue{}, fmt.Errorf("continue message: bad entropy: %v", err)
	}
	if len(e) < MinReseedBytes || len(e) > MaxReseedBytes {
		return Continue{}, fmt.Errorf("continue message: %d bytes of entropy (want %d to %d)", len(e), MinReseedBytes, MaxReseedBytes)
	}
	return Continue{Time: time.Unix(0, ns), Entropy: e}, nil
}

// HasSnapWait reports whether a kernel command line asks for the
// snapshot point.
func HasSnapWait(cmdline string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == SnapWaitArg {
			return true
		}
	}
	return false
}
