// Package guestssh owns banger's SSH identity and trust: the user key the
// daemon authorizes in every guest, per-VM host keys generated on the host
// (so the daemon knows each guest's key before the first connection and
// pins it — never blind trust), banger's own known_hosts, and the readiness
// probe that proves sshd answers with the pinned key.
package guestssh

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Keys manages files under dir: id_ed25519(.pub) and known_hosts.
type Keys struct {
	Dir string
	mu  sync.Mutex
}

func (k *Keys) IdentityFile() string   { return filepath.Join(k.Dir, "id_ed25519") }
func (k *Keys) KnownHostsFile() string { return filepath.Join(k.Dir, "known_hosts") }

// HostAlias is the name a VM's host key is pinned under.
func HostAlias(vmName string) string { return vmName + ".vm" }

// EnsureUserKey creates the user key pair once and returns the signer and
// the authorized_keys line.
func (k *Keys) EnsureUserKey() (ssh.Signer, string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := os.MkdirAll(k.Dir, 0o700); err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(k.IdentityFile())
	if errors.Is(err, os.ErrNotExist) {
		priv, pub, err := NewKeyPair("banger")
		if err != nil {
			return nil, "", err
		}
		if err := writeAtomic(k.IdentityFile(), priv, 0o600); err != nil {
			return nil, "", err
		}
		if err := writeAtomic(k.IdentityFile()+".pub", pub, 0o644); err != nil {
			return nil, "", err
		}
		b = priv
	} else if err != nil {
		return nil, "", err
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, "", fmt.Errorf("parse %s: %w", k.IdentityFile(), err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " banger", nil
}

// NewKeyPair returns an OpenSSH ed25519 private key (PEM) and its public
// authorized_keys line.
func NewKeyPair(comment string) (priv, pub []byte, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(sk, comment)
	if err != nil {
		return nil, nil, err
	}
	sp, err := ssh.NewPublicKey(pk)
	if err != nil {
		return nil, nil, err
	}
	line := bytes.TrimSpace(ssh.MarshalAuthorizedKey(sp))
	return pem.EncodeToMemory(block), append(append(line, ' '), comment+"\n"...), nil
}

// Pin records the host key of a VM under its alias, replacing any old pin.
func (k *Keys) Pin(vmName string, pubLine []byte) error {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		return fmt.Errorf("parse host key: %w", err)
	}
	alias := HostAlias(vmName)
	return k.editKnownHosts(func(lines []string) []string {
		out := dropAlias(lines, alias)
		return append(out, alias+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))))
	})
}

// Unpin drops a VM's pins (vm delete).
func (k *Keys) Unpin(vmName string) error {
	alias := HostAlias(vmName)
	return k.editKnownHosts(func(lines []string) []string { return dropAlias(lines, alias) })
}

func dropAlias(lines []string, alias string) []string {
	var out []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == alias {
			continue
		}
		out = append(out, l)
	}
	return out
}

func (k *Keys) editKnownHosts(fn func([]string) []string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := os.MkdirAll(k.Dir, 0o700); err != nil {
		return err
	}
	var lines []string
	if b, err := os.ReadFile(k.KnownHostsFile()); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) != "" {
				lines = append(lines, sc.Text())
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	lines = fn(lines)
	body := strings.Join(lines, "\n")
	if body != "" {
		body += "\n"
	}
	return writeAtomic(k.KnownHostsFile(), []byte(body), 0o600)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
