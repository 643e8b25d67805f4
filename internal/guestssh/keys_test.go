package guestssh

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestNewKeyPair(t *testing.T) {
	priv, pub, err := NewKeyPair("vm-web host key")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(priv, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Fatalf("private key is not OpenSSH PEM: %.40q", priv)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	pk, comment, opts, rest, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatalf("ParseAuthorizedKey(%q): %v", pub, err)
	}
	if comment != "vm-web host key" || len(opts) != 0 || len(rest) != 0 {
		t.Fatalf("comment %q opts %v rest %q", comment, opts, rest)
	}
	if pk.Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("key type %s, want ed25519", pk.Type())
	}
	if !bytes.Equal(pk.Marshal(), signer.PublicKey().Marshal()) {
		t.Fatal("public line does not match the private key")
	}
	if !bytes.HasSuffix(pub, []byte("\n")) || bytes.Count(pub, []byte("\n")) != 1 {
		t.Fatalf("public line %q: want exactly one trailing newline", pub)
	}
	priv2, _, err := NewKeyPair("x")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(priv, priv2) {
		t.Fatal("two key pairs are identical")
	}
}

func pubLine(t *testing.T) []byte {
	t.Helper()
	_, pub, err := NewKeyPair("host")
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// keyField returns the "type base64" part of a public key line.
func keyField(t *testing.T, line []byte) string {
	t.Helper()
	pk, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}

func readKnownHosts(t *testing.T, k *Keys) []string {
	t.Helper()
	b, err := os.ReadFile(k.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(k.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", fi.Mode().Perm())
	}
	s := string(b)
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		t.Errorf("known_hosts does not end in a newline: %q", s)
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestPinUnpin(t *testing.T) {
	k := &Keys{Dir: filepath.Join(t.TempDir(), "ssh")} // created on demand
	foreign := "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	if err := os.MkdirAll(k.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.KnownHostsFile(), []byte(foreign+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	web, web2, db, webNew := pubLine(t), pubLine(t), pubLine(t), pubLine(t)
	for _, p := range []struct {
		name string
		key  []byte
	}{{"web", web}, {"web2", web2}, {"db", db}} {
		if err := k.Pin(p.name, p.key); err != nil {
			t.Fatalf("Pin %s: %v", p.name, err)
		}
	}
	want := []string{foreign, "web.vm " + keyField(t, web), "web2.vm " + keyField(t, web2), "db.vm " + keyField(t, db)}
	if got := readKnownHosts(t, k); !reflect.DeepEqual(got, want) {
		t.Fatalf("after pins:\n%q\nwant\n%q", got, want)
	}

	// Re-pinning replaces the old key; the others are untouched.
	if err := k.Pin("web", webNew); err != nil {
		t.Fatal(err)
	}
	want = []string{foreign, "web2.vm " + keyField(t, web2), "db.vm " + keyField(t, db), "web.vm " + keyField(t, webNew)}
	if got := readKnownHosts(t, k); !reflect.DeepEqual(got, want) {
		t.Fatalf("after re-pin:\n%q\nwant\n%q", got, want)
	}

	// Unpin removes exactly one alias ("web" is not "web2").
	if err := k.Unpin("web"); err != nil {
		t.Fatal(err)
	}
	want = []string{foreign, "web2.vm " + keyField(t, web2), "db.vm " + keyField(t, db)}
	if got := readKnownHosts(t, k); !reflect.DeepEqual(got, want) {
		t.Fatalf("after unpin:\n%q\nwant\n%q", got, want)
	}
	if err := k.Unpin("never-pinned"); err != nil {
		t.Fatal(err)
	}
	if got := readKnownHosts(t, k); !reflect.DeepEqual(got, want) {
		t.Fatalf("unpin of an unknown VM changed the file: %q", got)
	}

	// A bad key is refused and nothing changes.
	if err := k.Pin("db", []byte("ssh-ed25519 not-base64!")); err == nil {
		t.Fatal("Pin accepted a malformed key")
	}
	if got := readKnownHosts(t, k); !reflect.DeepEqual(got, want) {
		t.Fatalf("failed pin changed the file: %q", got)
	}
}

func TestUnpinLastLeavesEmptyFile(t *testing.T) {
	k := &Keys{Dir: t.TempDir()}
	if err := k.Pin("solo", pubLine(t)); err != nil {
		t.Fatal(err)
	}
	if err := k.Unpin("solo"); err != nil {
		t.Fatal(err)
	}
	if got := readKnownHosts(t, k); len(got) != 0 {
		t.Fatalf("known_hosts = %q, want empty", got)
	}
}

func TestEnsureUserKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "ssh")
	k := &Keys{Dir: dir}
	s1, line1, err := k.EnsureUserKey()
	if err != nil {
		t.Fatal(err)
	}
	s2, line2, err := k.EnsureUserKey()
	if err != nil {
		t.Fatal(err)
	}
	// A new Keys over the same dir (a daemon restart) sees the same key.
	s3, line3, err := (&Keys{Dir: dir}).EnsureUserKey()
	if err != nil {
		t.Fatal(err)
	}
	if line1 != line2 || line1 != line3 ||
		!bytes.Equal(s1.PublicKey().Marshal(), s2.PublicKey().Marshal()) ||
		!bytes.Equal(s1.PublicKey().Marshal(), s3.PublicKey().Marshal()) {
		t.Fatal("EnsureUserKey is not stable across calls")
	}
	pk, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line1))
	if err != nil || comment != "banger" || !bytes.Equal(pk.Marshal(), s1.PublicKey().Marshal()) {
		t.Fatalf("authorized line %q: parse err %v, comment %q", line1, err, comment)
	}
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {k.IdentityFile(), 0o600}, {k.IdentityFile() + ".pub", 0o644}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != f.mode {
			t.Errorf("%s mode %v, want %v", f.path, fi.Mode(), f.mode)
		}
	}
	pubFile, err := os.ReadFile(k.IdentityFile() + ".pub")
	if err != nil || strings.TrimSpace(string(pubFile)) != line1 {
		t.Fatalf("id_ed25519.pub = %q (%v), want %q", pubFile, err, line1)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func TestEnsureUserKeyCorrupt(t *testing.T) {
	k := &Keys{Dir: t.TempDir()}
	if err := os.WriteFile(k.IdentityFile(), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.EnsureUserKey(); err == nil || !strings.Contains(err.Error(), k.IdentityFile()) {
		t.Fatalf("EnsureUserKey over a corrupt key = %v, want an error naming the file", err)
	}
}

func TestHostAlias(t *testing.T) {
	if got := HostAlias("dev"); got != "dev.vm" {
		t.Fatalf("HostAlias = %q", got)
	}
}
