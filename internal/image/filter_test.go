package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
)

type tarEntry struct {
	hdr  tar.Header
	body string
}

func buildTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.body))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	// Trailing record padding, as GNU tar and mmdebstrap emit.
	buf.Write(make([]byte, 8192))
	return buf.Bytes()
}

func dir(n string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: 0o755}}
}
func file(n, body string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: n}, body: body}
}
func link(n, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: n, Linkname: target}}
}

func syntheticRootfs(t *testing.T) []byte {
	return buildTar(t, []tarEntry{
		dir("./"), dir("./etc/"), dir("./etc/ssh/"), dir("./etc/ssh/sshd_config.d/"),
		file("./etc/ssh/ssh_host_rsa_key", "PRIVATE"),
		file("./etc/ssh/ssh_host_ed25519_key.pub", "PUBLIC"),
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "./etc/ssh/keycopy", Linkname: "./etc/ssh/ssh_host_rsa_key"}},
		file("./etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n"),
		file("./etc/shadow", "root:$6$salt$hash:20000:0:99999:7:::\nbin:*:20000:0:99999:7:::\n"),
		file("./etc/fstab", "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"),
		file("./etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
		file("./etc/hostname", "buildhost\n"),
		file("./etc/resolv.conf", "nameserver 10.0.0.1\n"),
		dir("./etc/systemd/"), dir("./etc/systemd/system/"),
		dir("./etc/systemd/system/getty.target.wants/"),
		link("./etc/systemd/system/getty.target.wants/getty@tty1.service", "/lib/systemd/system/getty@.service"),
		dir("./etc/systemd/system/timers.target.wants/"),
		link("./etc/systemd/system/timers.target.wants/apt-daily.timer", "/lib/systemd/system/apt-daily.timer"),
		link("./etc/systemd/system/timers.target.wants/systemd-tmpfiles-clean.timer", "/lib/systemd/system/systemd-tmpfiles-clean.timer"),
		dir("./usr/"), dir("./usr/bin/"),
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./usr/bin/sudo", Mode: 0o4755}, body: "ELF"},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "./usr/bin/sudoedit", Linkname: "./usr/bin/sudo"}},
	})
}

func readAll(t *testing.T, b []byte) (map[string]tarEntry, []string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	m := map[string]tarEntry{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		n := cleanName(h.Name)
		if _, dup := m[n]; dup {
			t.Errorf("duplicate entry %s", n)
		}
		m[n] = tarEntry{hdr: *h, body: string(body)}
		order = append(order, n)
	}
	return m, order
}

func TestCustomizeTar(t *testing.T) {
	var out bytes.Buffer
	mt := time.Unix(1700000000, 0)
	if err := customizeTar(bytes.NewReader(syntheticRootfs(t)), &out, filterOptions{ModTime: mt}); err != nil {
		t.Fatal(err)
	}
	m, order := readAll(t, out.Bytes())

	for _, gone := range []string{
		"/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/keycopy",
		"/etc/systemd/system/getty.target.wants/getty@tty1.service",
		"/etc/systemd/system/timers.target.wants/apt-daily.timer",
	} {
		if _, ok := m[gone]; ok {
			t.Errorf("%s should have been removed", gone)
		}
	}
	for _, kept := range []string{"/etc/systemd/system/timers.target.wants/systemd-tmpfiles-clean.timer", "/etc/ssh/sshd_config", "/usr/bin/sudoedit"} {
		if _, ok := m[kept]; !ok {
			t.Errorf("%s should have been kept", kept)
		}
	}
	if e := m["/usr/bin/sudo"]; e.body != "ELF" || e.hdr.Mode != 0o4755 {
		t.Errorf("sudo changed: %q mode %o", e.body, e.hdr.Mode)
	}
	for _, u := range MaskedUnits {
		e, ok := m["/etc/systemd/system/"+u]
		if !ok || e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != "/dev/null" {
			t.Errorf("%s not masked: %+v", u, e.hdr)
		}
	}
	want := map[string]string{
		"/etc/systemd/system/default.target":                      defaultTarget,
		"/etc/systemd/system/multi-user.target.wants/ssh.service": "/lib/systemd/system/ssh.service",
		"/etc/systemd/system/sshd.service":                        "/lib/systemd/system/ssh.service",
	}
	for n, target := range want {
		if e := m[n]; e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != target {
			t.Errorf("%s -> %q, want %q", n, e.hdr.Linkname, target)
		}
	}
	if e := m["/etc/machine-id"]; e.body != "" || e.hdr.Typeflag != tar.TypeReg {
		t.Errorf("machine-id = %q", e.body)
	}
	if strings.Contains(m["/etc/fstab"].body, "UNCONFIGURED") || strings.Contains(m["/etc/fstab"].body, "/dev") {
		t.Errorf("fstab = %q", m["/etc/fstab"].body)
	}
	if b := m["/etc/hostname"].body; strings.Contains(b, "buildhost") {
		t.Errorf("hostname = %q", b)
	}
	if b := m["/etc/resolv.conf"].body; strings.Contains(b, "10.0.0.1") {
		t.Errorf("resolv.conf = %q", b)
	}
	if b := m["/etc/shadow"].body; b != "root:*:20000:0:99999:7:::\nbin:*:20000:0:99999:7:::\n" {
		t.Errorf("shadow = %q", b)
	}
	if b := m["/etc/ssh/sshd_config.d/banger.conf"].body; !strings.Contains(b, "\nUseDNS no\n") || !strings.Contains(b, "PermitRootLogin prohibit-password") {
		t.Errorf("sshd drop-in = %q", b)
	}
	if !strings.Contains(m["/etc/systemd/system/ssh.service.d/banger.conf"].body, "ssh-keygen") {
		t.Error("ssh.service drop-in missing")
	}
	// Added directories come before their contents, root-owned 0755.
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	for _, d := range []string{"/etc/systemd/system/ssh.service.d", "/etc/systemd/system/multi-user.target.wants"} {
		e, ok := m[d]
		if !ok || e.hdr.Typeflag != tar.TypeDir || e.hdr.Mode != 0o755 || e.hdr.Uid != 0 {
			t.Errorf("%s: %+v", d, e.hdr)
		}
	}
	if pos["/etc/systemd/system/ssh.service.d"] > pos["/etc/systemd/system/ssh.service.d/banger.conf"] {
		t.Error("ssh.service.d written after its file")
	}
	if _, dup := m["/etc/ssh/sshd_config.d"]; !dup || m["/etc/ssh/sshd_config.d"].hdr.ModTime.Equal(mt) {
		t.Error("existing sshd_config.d should be kept, not re-added")
	}
}

func TestIsMasked(t *testing.T) {
	for unit, want := range map[string]bool{
		"getty@tty1.service":         true,
		"serial-getty@ttyS0.service": true,
		"apt-daily.timer":            true,
		"apt-daily.service":          false,
		"ssh.service":                false,
		"getty.target":               false,
	} {
		if got := isMasked(unit); got != want {
			t.Errorf("isMasked(%s) = %v", unit, got)
		}
	}
}

// The filtered stream must be something tar2ext4 accepts (hard links
// resolvable, parents present) and the result an ext4 we can read.
func TestCustomizedTarConvertsToExt4(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(customizeTar(bytes.NewReader(syntheticRootfs(t)), pw, filterOptions{ModTime: time.Now()}))
	}()
	out := filepath.Join(t.TempDir(), "rootfs.ext4")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tar2ext4.ConvertTarToExt4(pr, f, tar2ext4.ConvertWhiteout, tar2ext4.MaximumDiskSize(maxImageSize)); err != nil {
		t.Fatal(err)
	}
	if err := fixInodeBitmapPadding(f, f); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("e2fsck", "-fn", out).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	if out, err := exec.Command("debugfs", "-R", "cat /etc/ssh/sshd_config.d/banger.conf", out).Output(); err != nil || !strings.Contains(string(out), "UseDNS no") {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	uuid, err := ReadExt4UUID(out)
	if err != nil || uuid != "" {
		t.Fatalf("uuid %q err %v (tar2ext4 writes none)", uuid, err)
	}
}
