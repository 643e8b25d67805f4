package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func writeTestFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, path string) (string, os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), st.Mode().Perm()
}

// TestApplyConfig applies a full config to an image-like tree whose work
// disk (/root) is fresh.
func TestApplyConfig(t *testing.T) {
	root := t.TempDir()
	writeTestFile(t, root+"/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\timage-host\n", 0o644)
	writeTestFile(t, root+"/etc/ssh/ssh_host_rsa_key", "IMAGE-RSA", 0o600)
	writeTestFile(t, root+"/etc/ssh/ssh_host_rsa_key.pub", "IMAGE-RSA-PUB", 0o644)
	writeTestFile(t, root+"/etc/ssh/sshd_config", "Port 22\n", 0o644)
	writeTestFile(t, root+"/etc/skel/.bashrc", "# bashrc\n", 0o644)
	os.Symlink("/run/systemd/resolve/stub-resolv.conf", root+"/etc/resolv.conf")
	os.MkdirAll(root+"/root/lost+found", 0o700)
	os.Chmod(root+"/root", 0o755)

	cfg := proto.GuestConfig{
		Hostname:       "dev",
		Net:            &proto.GuestNet{DNS: []string{"172.30.0.1", "1.1.1.1"}},
		AuthorizedKeys: []string{"ssh-ed25519 AAAA one", "ssh-ed25519 BBBB two"},
		SSHHostKeys:    map[string]string{"ssh_host_ed25519_key": "PRIV", "ssh_host_ed25519_key.pub": "PUB"},
		Files: []proto.GuestFile{
			{Path: "/root/.gitconfig", Mode: 0o600, Content: []byte("[user]\n")},
			{Path: "/opt/new/dir/script", Mode: 0o755, Content: []byte("#!/bin/sh\n")},
		},
	}
	if err := (configApplier{root: root, cfg: cfg}).apply(true); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		path, content string
		mode          os.FileMode
	}{
		{"/root/.bashrc", "# bashrc\n", 0o644},
		{"/etc/hostname", "dev\n", 0o644},
		{"/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tdev\n", 0o644},
		{"/etc/resolv.conf", "nameserver 172.30.0.1\nnameserver 1.1.1.1\n", 0o644},
		{"/etc/ssh/ssh_host_ed25519_key", "PRIV", 0o600},
		{"/etc/ssh/ssh_host_ed25519_key.pub", "PUB", 0o644},
		{"/etc/ssh/sshd_config", "Port 22\n", 0o644},
		{"/root/.ssh/authorized_keys", "ssh-ed25519 AAAA one\nssh-ed25519 BBBB two\n", 0o600},
		{"/root/.gitconfig", "[user]\n", 0o600},
		{"/opt/new/dir/script", "#!/bin/sh\n", 0o755},
	}
	for _, c := range checks {
		content, mode := readTestFile(t, root+c.path)
		if content != c.content || mode != c.mode {
			t.Errorf("%s: %q %o, want %q %o", c.path, content, mode, c.content, c.mode)
		}
	}
	for _, gone := range []string{"ssh_host_rsa_key", "ssh_host_rsa_key.pub"} {
		if _, err := os.Lstat(root + "/etc/ssh/" + gone); !os.IsNotExist(err) {
			t.Errorf("image host key %s kept", gone)
		}
	}
	for dir, want := range map[string]os.FileMode{"/root": 0o700, "/root/.ssh": 0o700} {
		if st, err := os.Stat(root + dir); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s mode %v err %v, want %o", dir, st.Mode().Perm(), err, want)
		}
	}
}

// TestWorkDiskInUseKeepsContents checks that skel is copied only into a
// fresh work disk, never over a user's files.
func TestWorkDiskInUseKeepsContents(t *testing.T) {
	root := t.TempDir()
	writeTestFile(t, root+"/etc/skel/.bashrc", "# skel\n", 0o644)
	writeTestFile(t, root+"/root/.bashrc", "# mine\n", 0o644)
	if err := (configApplier{root: root}).apply(true); err != nil {
		t.Fatal(err)
	}
	if content, _ := readTestFile(t, root+"/root/.bashrc"); content != "# mine\n" {
		t.Fatalf(".bashrc overwritten: %q", content)
	}
}

func TestApplyConfigRejectsBadEntries(t *testing.T) {
	root := t.TempDir()
	cfg := proto.GuestConfig{
		SSHHostKeys: map[string]string{"../../etc/passwd": "x"},
		Files:       []proto.GuestFile{{Path: "relative/path", Content: []byte("x")}},
	}
	err := (configApplier{root: root, cfg: cfg}).apply(false)
	if err == nil || !strings.Contains(err.Error(), "not a host key file name") || !strings.Contains(err.Error(), "not absolute") {
		t.Fatalf("err = %v", err)
	}
}

func TestHostsWithName(t *testing.T) {
	if got := string(hostsWithName("", "vm")); got != "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tvm\n" {
		t.Fatalf("empty hosts: %q", got)
	}
	if got := string(hostsWithName("127.0.0.1 localhost", "vm")); got != "127.0.0.1 localhost\n127.0.1.1\tvm\n" {
		t.Fatalf("no trailing newline: %q", got)
	}
}
