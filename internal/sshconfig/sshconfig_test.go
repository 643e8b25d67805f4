package sshconfig

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const target = "/home/u/.config/banger/ssh_config"

// foreign is a user's config with things easy to damage: no final
// newline, CRLF lines, comments, a Match block.
const foreign = "# my config\r\nHost work\r\n    HostName 192.0.2.4\r\n\nMatch host *.corp\n  User me\n  # trailing comment without newline"

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstallTwiceAndUninstallPreserveForeignBytes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	writeFile(t, p, foreign)
	changed, err := Install(p, target)
	if err != nil || !changed {
		t.Fatalf("Install = %v %v", changed, err)
	}
	got := readFile(t, p)
	if got != Region(target)+foreign {
		t.Fatalf("after install:\n%q", got)
	}
	changed, err = Install(p, target)
	if err != nil || changed || readFile(t, p) != got {
		t.Fatalf("second Install changed=%v err=%v", changed, err)
	}
	if ok, err := Installed(p); !ok || err != nil {
		t.Fatalf("Installed = %v %v", ok, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode changed to %v", fi.Mode().Perm())
	}
	changed, err = Uninstall(p)
	if err != nil || !changed || readFile(t, p) != foreign {
		t.Fatalf("Uninstall = %v %v, file:\n%q", changed, err, readFile(t, p))
	}
	if changed, err := Uninstall(p); err != nil || changed {
		t.Fatalf("second Uninstall = %v %v", changed, err)
	}
}

func TestInstallMovedRegionIsUpdatedInPlace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	before, after := "Host a\n  User x\n", "Host b\n  User y\n"
	writeFile(t, p, before+Region("/old/path")+after)
	if changed, err := Install(p, target); err != nil || !changed {
		t.Fatalf("Install = %v %v", changed, err)
	}
	if got := readFile(t, p); got != before+Region(target)+after {
		t.Fatalf("region not replaced in place:\n%s", got)
	}
}

func TestMissingFile(t *testing.T) {
	home := t.TempDir()
	p := filepath.Join(home, ".ssh", "config")
	if changed, err := Uninstall(p); err != nil || changed {
		t.Fatalf("Uninstall of a missing file = %v %v", changed, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Uninstall created the file")
	}
	if changed, err := Install(p, target); err != nil || !changed {
		t.Fatalf("Install = %v %v", changed, err)
	}
	if got := readFile(t, p); got != Region(target) {
		t.Fatalf("new file:\n%s", got)
	}
	fi, _ := os.Stat(p)
	di, _ := os.Stat(filepath.Dir(p))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes: file %v dir %v", fi.Mode().Perm(), di.Mode().Perm())
	}
}

func TestMalformedRegionChangesNothing(t *testing.T) {
	cases := map[string]string{
		"begin without end": "Host a\n" + BeginMarker + "\nInclude x\n",
		"end without begin": EndMarker + "\nHost a\n",
		"end before begin":  EndMarker + "\n" + BeginMarker + "\n",
		"two regions":       Region("x") + "Host a\n" + Region("y"),
	}
	for name, body := range cases {
		p := filepath.Join(t.TempDir(), "config")
		writeFile(t, p, body)
		for op, f := range map[string]func() (bool, error){
			"install":   func() (bool, error) { return Install(p, target) },
			"uninstall": func() (bool, error) { return Uninstall(p) },
		} {
			changed, err := f()
			if !errors.Is(err, ErrMalformed) || changed || !strings.Contains(err.Error(), p) {
				t.Errorf("%s, %s: changed=%v err=%v", name, op, changed, err)
			}
			if readFile(t, p) != body {
				t.Errorf("%s, %s: file changed", name, op)
			}
		}
	}
}

func TestSymlinkedConfigKeepsTheLink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles-ssh-config")
	writeFile(t, real, "Host a\n")
	link := filepath.Join(dir, "config")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(link, target); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced by a file")
	}
	if got := readFile(t, real); got != Region(target)+"Host a\n" {
		t.Fatalf("target:\n%s", got)
	}
}

// TestOpenSSHReadsIt checks with OpenSSH itself (`ssh -G` prints the
// effective options without connecting) that the Include and banger's
// blocks give a VM its address, key and pins, and leave other hosts alone.
func TestOpenSSHReadsIt(t *testing.T) {
	dir := t.TempDir()
	bangerCfg := filepath.Join(dir, "banger dir", "ssh_config")
	os.MkdirAll(filepath.Dir(bangerCfg), 0o700)
	if err := WriteFile(bangerCfg, Render([]Host{{"dev", "10.77.0.2"}, {"api", "10.77.0.3"}},
		"/state/ssh/id_ed25519", "/state/ssh/known_hosts")); err != nil {
		t.Fatal(err)
	}
	user := filepath.Join(dir, "config")
	writeFile(t, user, "Host work\n    HostName 192.0.2.4\n    User me\n")
	if _, err := Install(user, bangerCfg); err != nil {
		t.Fatal(err)
	}
	effective := func(host string) string {
		out, err := exec.Command("ssh", "-G", "-F", user, host).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh -G %s: %v\n%s", host, err, out)
		}
		return string(out)
	}
	got := effective("dev.vm")
	for _, want := range []string{"hostname 10.77.0.2\n", "user root\n", "identityfile /state/ssh/id_ed25519\n",
		"userknownhostsfile /state/ssh/known_hosts\n", "stricthostkeychecking accept-new\n", "hostkeyalias dev.vm\n", "identitiesonly yes\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("ssh -G dev.vm lacks %q", want)
		}
	}
	if got := effective("api.vm"); !strings.Contains(got, "hostname 10.77.0.3\n") {
		t.Errorf("api.vm: %s", got)
	}
	if got := effective("work"); !strings.Contains(got, "hostname 192.0.2.4\n") || !strings.Contains(got, "user me\n") || strings.Contains(got, "known_hosts\n") && strings.Contains(got, "/state/ssh") {
		t.Errorf("the user's own host changed:\n%s", got)
	}
}
