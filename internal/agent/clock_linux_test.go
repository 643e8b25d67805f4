package agent

import (
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func TestReseedRefusesBadSizes(t *testing.T) {
	for _, n := range []int{0, proto.MinReseedBytes - 1, proto.MaxReseedBytes + 1} {
		if err := reseed("/dev/urandom", make([]byte, n)); err == nil || !strings.Contains(err.Error(), "bytes of entropy") {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
}

// TestReseedReachesTheKernel runs the ioctls for real: as root (CI runs
// as root) both succeed; unprivileged, RNDADDENTROPY is refused with
// EPERM, which proves the request reached the kernel's random driver.
func TestReseedReachesTheKernel(t *testing.T) {
	entropy := make([]byte, 64) // real randomness: it is credited to this host's pool
	rand.Read(entropy)
	err := reseed("/dev/urandom", entropy)
	if os.Geteuid() == 0 {
		if err != nil {
			t.Fatalf("as root: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), unix.EPERM.Error()) {
		t.Fatalf("unprivileged: %v, want EPERM from RNDADDENTROPY", err)
	}
}

func TestReseedOnANonRandomDeviceFails(t *testing.T) {
	f := t.TempDir() + "/not-random"
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := reseed(f, make([]byte, 64)); err == nil || !strings.Contains(err.Error(), "RNDADDENTROPY") {
		t.Fatalf("reseed on a regular file: %v", err)
	}
}

// The ops over a real agent session: SetTime reaches the clock with the
// host's time; bad params and bad entropy come back as request errors.
func TestClockOpsOverTheChannel(t *testing.T) {
	var got unix.Timespec
	old := setClock
	setClock = func(ts *unix.Timespec) error { got = *ts; return nil }
	t.Cleanup(func() { setClock = old })
	c := connectAgent(t, &Server{}, nil)
	want := time.Unix(1796306434, 123456789)
	if err := c.SetTime(testCtx(t), want); err != nil {
		t.Fatal(err)
	}
	if time.Unix(got.Unix()) != want {
		t.Errorf("clock set to %v, want %v", time.Unix(got.Unix()), want)
	}
	if err := c.SetTime(testCtx(t), time.Unix(0, 0)); err == nil || !strings.Contains(err.Error(), "settime: bad params") {
		t.Errorf("settime at the epoch: %v", err)
	}
	if err := c.Reseed(testCtx(t), []byte("short")); err == nil || !strings.Contains(err.Error(), "bytes of entropy") {
		t.Errorf("reseed with 5 bytes: %v", err)
	}
}
