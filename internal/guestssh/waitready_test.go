package guestssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// keyPair returns a signer and its authorized_keys line.
func keyPair(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	priv, pub, err := NewKeyPair("test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

// sshServer is an in-process sshd on 127.0.0.1 that presents hostKey and
// accepts only the user key. The first dropFirst connections are closed
// before the handshake, like a guest whose sshd is still starting.
type sshServer struct {
	addr      string
	handshook atomic.Int32 // successful authentications
	accepted  atomic.Int32
}

func startSSHServer(t *testing.T, hostKey ssh.Signer, user ssh.PublicKey, dropFirst int) *sshServer {
	t.Helper()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() == "root" && bytes.Equal(key.Marshal(), user.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("key for %s not authorized", meta.User())
		},
	}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &sshServer{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			if int(srv.accepted.Add(1)) <= dropFirst {
				conn.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
				if err != nil {
					return
				}
				srv.handshook.Add(1)
				go ssh.DiscardRequests(reqs)
				go func() {
					for ch := range chans {
						ch.Reject(ssh.Prohibited, "no sessions in tests")
					}
				}()
				sc.Wait()
			}()
		}
	}()
	return srv
}

func TestWaitReadyWithPinnedKey(t *testing.T) {
	host, hostPub := keyPair(t)
	user, _ := keyPair(t)
	srv := startSSHServer(t, host, user.PublicKey(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitReady(ctx, srv.addr, user, hostPub); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	// The server counts the session just after the client sees success.
	deadline := time.Now().Add(2 * time.Second)
	for srv.handshook.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.handshook.Load(); n != 1 {
		t.Fatalf("%d authenticated sessions, want 1", n)
	}
}

func TestWaitReadyRetriesUntilSSHDAnswers(t *testing.T) {
	host, hostPub := keyPair(t)
	user, _ := keyPair(t)
	srv := startSSHServer(t, host, user.PublicKey(), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitReady(ctx, srv.addr, user, hostPub); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if n := srv.accepted.Load(); n != 4 {
		t.Fatalf("%d connections, want 3 dropped + 1 good", n)
	}
}

func TestWaitReadyWrongPinFailsFast(t *testing.T) {
	host, _ := keyPair(t)
	_, otherPub := keyPair(t)
	user, _ := keyPair(t)
	srv := startSSHServer(t, host, user.PublicKey(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := WaitReady(ctx, srv.addr, user, otherPub)
	if !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("WaitReady with a wrong pin = %v, want ErrHostKeyMismatch", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("mismatch took %v: it must not be retried", d)
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want exactly 1 (no retry after a mismatch)", n)
	}
	if n := srv.handshook.Load(); n != 0 {
		t.Fatal("the user key was offered to a server with the wrong host key")
	}
}

func TestWaitReadyUnauthorizedUserKeyTimesOut(t *testing.T) {
	host, hostPub := keyPair(t)
	user, _ := keyPair(t)
	stranger, _ := keyPair(t)
	srv := startSSHServer(t, host, user.PublicKey(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	err := WaitReady(ctx, srv.addr, stranger, hostPub)
	if err == nil || errors.Is(err, ErrHostKeyMismatch) || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("WaitReady with an unauthorized key = %v, want a not-ready timeout", err)
	}
	if n := srv.accepted.Load(); n < 2 {
		t.Fatalf("%d attempts, want retries until the deadline", n)
	}
}

func TestWaitReadyHonoursContextWhenNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	_, hostPub := keyPair(t)
	user, _ := keyPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = WaitReady(ctx, addr, user, hostPub)
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("WaitReady = %v, want a not-ready error naming %s", err, addr)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not carry the last dial failure", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second {
		t.Fatalf("WaitReady returned after %v, want about the 500ms deadline", d)
	}
}

func TestWaitReadyBadPin(t *testing.T) {
	user, _ := keyPair(t)
	if err := WaitReady(context.Background(), "127.0.0.1:1", user, []byte("not a key")); err == nil {
		t.Fatal("WaitReady accepted an unparsable host key")
	}
}
