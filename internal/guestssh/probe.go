package guestssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// ProbeKind says what a failed sshd probe saw.
type ProbeKind string

const (
	ProbeRefused     ProbeKind = "refused"      // nothing listens on port 22 (yet)
	ProbeNoAnswer    ProbeKind = "timeout"      // no answer at all: the guest is down, hung or unreachable
	ProbeClosed      ProbeKind = "closed"       // sshd took the connection and dropped it before the handshake ended
	ProbeAuth        ProbeKind = "auth"         // sshd refused banger's user key
	ProbeKeyMismatch ProbeKind = "key-mismatch" // sshd presented a host key other than the pinned one
)

// ProbeError is a failed probe. Only a ProbeKeyMismatch speaks of keys,
// and only when the probe really saw another key.
type ProbeError struct {
	Kind      ProbeKind
	Addr      string
	Got, Want string // host key fingerprints (ProbeKeyMismatch)
	Err       error
}

func (e *ProbeError) Error() string {
	switch e.Kind {
	case ProbeRefused:
		return fmt.Sprintf("connection to %s refused (sshd is not listening)", e.Addr)
	case ProbeNoAnswer:
		return fmt.Sprintf("no answer from %s (%v)", e.Addr, e.Err)
	case ProbeClosed:
		return fmt.Sprintf("sshd at %s closed the connection before the handshake ended (%v)", e.Addr, e.Err)
	case ProbeAuth:
		return fmt.Sprintf("sshd at %s did not accept banger's key (%v)", e.Addr, e.Err)
	case ProbeKeyMismatch:
		return fmt.Sprintf("sshd at %s presented host key %s, not the pinned %s: refused as a possible man-in-the-middle", e.Addr, e.Got, e.Want)
	}
	return fmt.Sprintf("probe %s: %v", e.Addr, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Retryable reports whether sshd may yet come up: a refused, dropped or
// unanswered connection, or a key not yet authorized. A host key
// mismatch is final.
func (e *ProbeError) Retryable() bool { return e.Kind != ProbeKeyMismatch }

// ErrHostKeyMismatch means the guest presented a key other than its pin.
var ErrHostKeyMismatch = errors.New("ssh host key does not match the pinned key (possible man-in-the-middle)")

// Probe makes one SSH connection to addr: it succeeds when sshd
// completes a handshake with the pinned host key (an authorized_keys
// line) and accepts the user key. Failures are *ProbeError.
func Probe(ctx context.Context, addr string, user ssh.Signer, hostKey []byte) error {
	want, _, _, _, err := ssh.ParseAuthorizedKey(hostKey)
	if err != nil {
		return fmt.Errorf("parse pinned host key: %w", err)
	}
	var got ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(user)},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			if !bytes.Equal(k.Marshal(), want.Marshal()) {
				got = k
				return ErrHostKeyMismatch
			}
			return nil
		},
		Timeout: 5 * time.Second,
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return &ProbeError{Kind: ProbeRefused, Addr: addr, Err: err}
		}
		return &ProbeError{Kind: ProbeNoAnswer, Addr: addr, Err: err}
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err == nil {
		ssh.NewClient(c, chans, reqs).Close()
		return nil
	}
	conn.Close()
	switch {
	case errors.Is(err, ErrHostKeyMismatch) && got != nil:
		return &ProbeError{Kind: ProbeKeyMismatch, Addr: addr, Err: ErrHostKeyMismatch,
			Got: ssh.FingerprintSHA256(got), Want: ssh.FingerprintSHA256(want)}
	case strings.Contains(err.Error(), "unable to authenticate"):
		return &ProbeError{Kind: ProbeAuth, Addr: addr, Err: err}
	case errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil:
		return &ProbeError{Kind: ProbeNoAnswer, Addr: addr, Err: err}
	}
	return &ProbeError{Kind: ProbeClosed, Addr: addr, Err: err}
}

// WaitReady probes addr until sshd is ready or ctx ends; a host key
// mismatch ends it at once. The error after ctx ends wraps the last
// probe's *ProbeError.
func WaitReady(ctx context.Context, addr string, user ssh.Signer, hostKey []byte) error {
	start := time.Now()
	for {
		err := Probe(ctx, addr, user, hostKey)
		var pe *ProbeError
		if err == nil || !errors.As(err, &pe) || !pe.Retryable() {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd at %s not ready after %s: %w", addr, time.Since(start).Round(100*time.Millisecond), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Pinned is the host key pinned for a VM in banger's known_hosts, as an
// authorized_keys line: what OpenSSH will hold the guest to.
func (k *Keys) Pinned(vmName string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	b, err := os.ReadFile(k.KnownHostsFile())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	alias := HostAlias(vmName)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == alias {
			return []byte(f[1] + " " + f[2]), nil
		}
	}
	return nil, fmt.Errorf("no host key pinned for %s in %s", alias, k.KnownHostsFile())
}
