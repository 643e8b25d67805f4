package guestssh

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each failure says what failed; only a real mismatch speaks of keys.
func TestProbeSaysWhatFailed(t *testing.T) {
	host, hostPub := keyPair(t)
	_, otherPub := keyPair(t)
	user, _ := keyPair(t)
	stranger, _ := keyPair(t)
	good := startSSHServer(t, host, user.PublicKey(), 0)
	dropping := startSSHServer(t, host, user.PublicKey(), 100)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	for _, c := range []struct {
		name string
		addr string
		user interface{}
		pin  []byte
		kind ProbeKind
		want string
	}{
		{"refused", closedAddr, nil, hostPub, ProbeRefused, "refused"},
		{"silent", silent.Addr().String(), nil, hostPub, ProbeNoAnswer, "no answer"},
		{"dropped", dropping.addr, nil, hostPub, ProbeClosed, "closed the connection"},
		{"auth", good.addr, "stranger", hostPub, ProbeAuth, "did not accept banger's key"},
		{"mismatch", good.addr, nil, otherPub, ProbeKeyMismatch, "man-in-the-middle"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
			defer cancel()
			u := user
			if c.user != nil {
				u = stranger
			}
			err := Probe(ctx, c.addr, u, c.pin)
			var pe *ProbeError
			if !errors.As(err, &pe) || pe.Kind != c.kind {
				t.Fatalf("Probe = %v, want kind %s", err, c.kind)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, c.addr) {
				t.Errorf("message %q lacks %q or the address", msg, c.want)
			}
			isMismatch := c.kind == ProbeKeyMismatch
			if strings.Contains(msg, "host key") != isMismatch || errors.Is(err, ErrHostKeyMismatch) != isMismatch {
				t.Errorf("message %q: only a mismatch may speak of host keys", msg)
			}
			if isMismatch && (!strings.HasPrefix(pe.Got, "SHA256:") || pe.Got == pe.Want) {
				t.Errorf("mismatch fingerprints got %q want %q", pe.Got, pe.Want)
			}
		})
	}
	if err := Probe(context.Background(), good.addr, user, hostPub); err != nil {
		t.Fatalf("Probe of a ready sshd: %v", err)
	}
}

func TestPinnedReadsKnownHosts(t *testing.T) {
	k := &Keys{Dir: filepath.Join(t.TempDir(), "ssh")}
	_, pub := keyPair(t)
	_, other := keyPair(t)
	if err := k.Pin("dev", pub); err != nil {
		t.Fatal(err)
	}
	if err := k.Pin("dev2", other); err != nil {
		t.Fatal(err)
	}
	got, err := k.Pinned("dev")
	if err != nil || !strings.HasPrefix(string(pub), string(got)) {
		t.Fatalf("Pinned = %q %v, want the start of %q", got, err, pub)
	}
	if _, err := k.Pinned("nope"); err == nil || !strings.Contains(err.Error(), "nope.vm") {
		t.Fatalf("Pinned of an unknown VM = %v", err)
	}
}
