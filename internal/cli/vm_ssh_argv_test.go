package cli

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
)

// Several arguments after -- arrive at the remote command as the same
// argv: the quoted line is run here by the shells a guest may have.
func TestRemoteCommandKeepsArgv(t *testing.T) {
	args := []string{"a b", "it's", `"dq"`, "$HOME", `back\slash`, "", "*", "~", "a\nb", "-n",
		"';touch /tmp/x'", "$(id)", "`id`", "&&", "tab\there", "%s", "!", "é"}
	line := remoteCommand(append([]string{"printf", `%s\0`}, args...))
	for _, shell := range []string{"sh", "bash", "dash"} {
		if _, err := exec.LookPath(shell); err != nil {
			continue
		}
		out, err := exec.Command(shell, "-c", line).Output()
		if err != nil {
			t.Fatalf("%s -c %q: %v", shell, line, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if !slices.Equal(got, args) {
			t.Errorf("%s: got %q\nwant %q\nline %s", shell, got, args, line)
		}
	}
	// sh -c 'echo a && echo b' is three arguments, so both echoes run in
	// the inner shell.
	out, err := exec.Command("sh", "-c", remoteCommand([]string{"sh", "-c", "echo a && echo b"})).Output()
	if err != nil || string(out) != "a\nb\n" {
		t.Errorf("sh -c 'echo a && echo b': %q %v", out, err)
	}
	// One argument is a command line for the remote shell, as typed.
	if got := remoteCommand([]string{"cd repo && make"}); got != "cd repo && make" {
		t.Errorf("single argument became %q", got)
	}
	if got := remoteCommand(nil); got != "" {
		t.Errorf("no command became %q", got)
	}
}

func goodInfo() api.SSHInfo {
	return api.SSHInfo{VM: api.VM{Name: "dev"}, User: "root", Host: "10.77.0.2", HostKeyAlias: "dev.vm",
		IdentityFile: "/home/u/.local/state/banger/ssh/id_ed25519", KnownHostsFile: "/home/u/.local/state/banger/ssh/known_hosts"}
}

func TestSSHArgvPutsTheDestinationAfterDashDash(t *testing.T) {
	a, err := sshArgv(goodInfo(), true, []string{"sh", "-c", "echo a && echo b"})
	if err != nil {
		t.Fatal(err)
	}
	tail := a[len(a)-4:]
	if !slices.Equal(tail, []string{"-T", "--", "root@10.77.0.2", "sh -c 'echo a && echo b'"}) {
		t.Fatalf("argv ends %q", tail)
	}
	// OpenSSH itself reads the options as meant (-G prints its config).
	if ssh, err := exec.LookPath("ssh"); err == nil {
		out, err := exec.Command(ssh, append([]string{"-G"}, a...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh -G: %v\n%s", err, out)
		}
		for _, want := range []string{"user root\n", "hostname 10.77.0.2\n", "hostkeyalias dev.vm\n",
			"userknownhostsfile /home/u/.local/state/banger/ssh/known_hosts\n", "stricthostkeychecking true\n"} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("ssh -G lacks %q", want)
			}
		}
	}
}

// The proof of concept: a daemon (or anything on its socket) answering
// with a user name that is an ssh option. Every value reaching the argv
// is checked.
func TestSSHInfoFromTheDaemonIsValidated(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(*api.SSHInfo)
		want  string
	}{
		{"option as user", func(i *api.SSHInfo) { i.User = "-oProxyCommand=sh -c 'touch /tmp/pwned'" }, "user"},
		{"user with @", func(i *api.SSHInfo) { i.User = "root@evil" }, "user"},
		{"empty user", func(i *api.SSHInfo) { i.User = "" }, "user"},
		{"option as host", func(i *api.SSHInfo) { i.Host = "-oProxyCommand=x" }, "host"},
		{"host with space", func(i *api.SSHInfo) { i.Host = "10.0.0.1 -v" }, "host"},
		{"alias with option", func(i *api.SSHInfo) { i.HostKeyAlias = "dev.vm\n-oProxyCommand=x" }, "alias"},
		{"relative identity", func(i *api.SSHInfo) { i.IdentityFile = "-oProxyCommand=x" }, "identity"},
		{"known_hosts with newline", func(i *api.SSHInfo) { i.KnownHostsFile = "/a\nProxyCommand x" }, "known_hosts"},
		{"known_hosts with quote", func(i *api.SSHInfo) { i.KnownHostsFile = `/a" ProxyCommand="x` }, "known_hosts"},
		{"identity with %", func(i *api.SSHInfo) { i.IdentityFile = "/a/%d" }, "identity"},
		{"unclean path", func(i *api.SSHInfo) { i.IdentityFile = "/a/../b" }, "identity"},
	} {
		info := goodInfo()
		c.spoil(&info)
		a, err := sshArgv(info, false, nil)
		if err == nil || !strings.Contains(err.Error(), "refusing to run ssh") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: argv %q err %v", c.name, a, err)
		}
	}
	for _, h := range []string{"10.77.0.2", "fd00::2", "dev.vm", "a-b.example.org"} {
		info := goodInfo()
		info.Host = h
		if _, err := sshArgv(info, false, nil); err != nil {
			t.Errorf("host %q refused: %v", h, err)
		}
	}
}
