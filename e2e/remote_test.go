package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// remoteRig is a remote host on one machine: the test env's namespace
// (its bangerd, bridge and VMs) with a real sshd, and a second namespace
// for the client, joined by a veth pair. The client has its own HOME and
// XDG dirs and runs OpenSSH through an `ssh` on its PATH that adds the
// test's ssh_config (as a user's ~/.ssh/config would be read).
//
// Each ssh alias reaches sshd at its own address, so their OpenSSH
// master connections (keyed by address, port and user) stay apart, and
// logs in with its own key, whose authorized_keys options give the
// remote shell its environment:
//
//	box       the remote banger (PATH, HOME and XDG dirs of the env)
//	nobanger  a PATH without banger
//	oldver    a banger that greets with API version 1
//	nostart   the real banger with a config.toml bangerd refuses
//	changed   box's key, but a known_hosts pinning another host key
//	down      a port nothing listens on
type remoteRig struct {
	remote *env // where bangerd runs (sshd's namespace)
	client *env // the CLI's side: another namespace, HOME and XDG
	dir    string
	crt    string // the client's XDG_RUNTIME_DIR
}

const rigNet = "10.231.7"

func newRemoteRig(t *testing.T) *remoteRig {
	e := newEnv(t)
	dir := t.TempDir()
	g := &remoteRig{remote: e, dir: dir}
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, k := range []string{"hostkey", "otherhost", "key-box", "key-nobanger", "key-oldver", "key-nostart"} {
		run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", k, "-f", p(k))
	}
	pub := func(name string) string {
		b, err := os.ReadFile(p(name + ".pub"))
		must(t, err)
		return strings.TrimSpace(string(b))
	}

	// The remote shells' environments.
	envOf := func(vars []string, drop ...string) map[string]string {
		m := map[string]string{}
		for _, v := range vars {
			if k, val, ok := strings.Cut(v, "="); ok && (k == "HOME" || strings.HasPrefix(k, "XDG_")) {
				m[k] = val
			}
		}
		return m
	}
	sys := "/usr/sbin:/usr/bin:/sbin:/bin"
	boxEnv := envOf(e.vars)
	boxEnv["PATH"] = e.bin + ":" + sys
	nobEnv := map[string]string{"PATH": sys, "HOME": dir}
	must(t, os.MkdirAll(p("oldbin"), 0o755))
	must(t, os.WriteFile(p("oldbin/banger"), []byte("#!/bin/sh\nprintf '{\"banger\":\"dial-stdio\",\"api_version\":1,\"version\":\"v0.1.0-old\"}\\n'\nexec cat\n"), 0o755))
	oldEnv := map[string]string{"PATH": p("oldbin") + ":" + sys, "HOME": dir}
	brokenRT, err := os.MkdirTemp("/tmp", "bgrb")
	must(t, err)
	t.Cleanup(func() { killLeftovers(t, brokenRT); os.RemoveAll(brokenRT) })
	must(t, os.MkdirAll(p("broken/config/banger"), 0o700))
	must(t, os.WriteFile(p("broken/config/banger/config.toml"), []byte("[vm_defaults]\nvcpu = \"many\"\n"), 0o600))
	nostartEnv := map[string]string{"PATH": e.bin + ":" + sys, "HOME": p("broken"), "XDG_CONFIG_HOME": p("broken/config"),
		"XDG_STATE_HOME": p("broken/state"), "XDG_CACHE_HOME": p("broken/cache"), "XDG_RUNTIME_DIR": brokenRT}
	var ak strings.Builder
	for _, k := range []struct {
		key string
		env map[string]string
	}{{"key-box", boxEnv}, {"key-nobanger", nobEnv}, {"key-oldver", oldEnv}, {"key-nostart", nostartEnv}} {
		var opts []string
		for name, v := range k.env {
			opts = append(opts, fmt.Sprintf("environment=%q", name+"="+v))
		}
		fmt.Fprintf(&ak, "%s %s\n", strings.Join(opts, ","), pub(k.key))
	}
	must(t, os.WriteFile(p("authorized_keys"), []byte(ak.String()), 0o600))
	must(t, os.WriteFile(p("sshd_config"), []byte(fmt.Sprintf(`ListenAddress 0.0.0.0:2222
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitUserEnvironment yes
AllowTcpForwarding yes
MaxStartups 100
MaxSessions 100
`, p("hostkey"), p("authorized_keys"), p("sshd.pid"))), 0o600))
	must(t, os.MkdirAll("/run/sshd", 0o755)) // sshd's privilege separation directory
	run(t, "/usr/sbin/sshd", "-t", "-f", p("sshd_config"))

	// The client's namespace, joined to the remote's by a veth pair made
	// inside the namespaces (the host's interfaces are never touched).
	cns := fmt.Sprintf("bgrc%d", os.Getpid()%100000)
	run(t, "ip", "netns", "add", cns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", cns).Run() })
	run(t, "ip", "-n", e.ns, "link", "add", "bgrv0", "type", "veth", "peer", "name", "bgrv1", "netns", cns)
	for _, a := range []string{"1", "11", "12", "13", "14"} {
		run(t, "ip", "-n", e.ns, "addr", "add", rigNet+"."+a+"/24", "dev", "bgrv0")
	}
	run(t, "ip", "-n", e.ns, "link", "set", "bgrv0", "up")
	run(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
	run(t, "ip", "-n", cns, "addr", "add", rigNet+".2/24", "dev", "bgrv1")
	run(t, "ip", "-n", cns, "link", "set", "bgrv1", "up")
	run(t, "ip", "-n", cns, "link", "set", "lo", "up")

	sshd := exec.Command("ip", "netns", "exec", e.ns, "/usr/sbin/sshd", "-D", "-e", "-f", p("sshd_config"))
	sshdLog, err := os.Create(p("sshd.log"))
	must(t, err)
	sshd.Stdout, sshd.Stderr = sshdLog, sshdLog
	must(t, sshd.Start())
	t.Cleanup(func() {
		sshd.Process.Signal(syscall.SIGTERM)
		sshd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(p("sshd.log"))
			t.Logf("sshd log:\n%s", b)
		}
	})

	// The client: its ssh_config, known_hosts and an ssh on PATH that
	// reads them.
	hostPub := strings.Fields(pub("hostkey"))
	otherPub := strings.Fields(pub("otherhost"))
	var kh strings.Builder
	for _, a := range []string{"1", "11", "12", "13"} {
		fmt.Fprintf(&kh, "[%s.%s]:2222 %s %s\n", rigNet, a, hostPub[0], hostPub[1])
	}
	must(t, os.WriteFile(p("known_hosts"), []byte(kh.String()), 0o600))
	must(t, os.WriteFile(p("known_hosts_changed"), []byte(fmt.Sprintf("[%s.14]:2222 %s %s\n", rigNet, otherPub[0], otherPub[1])), 0o600))
	cfg := fmt.Sprintf(`Host box
  HostName %[1]s.1
  IdentityFile %[2]s/key-box
Host nobanger
  HostName %[1]s.11
  IdentityFile %[2]s/key-nobanger
Host oldver
  HostName %[1]s.12
  IdentityFile %[2]s/key-oldver
Host nostart
  HostName %[1]s.13
  IdentityFile %[2]s/key-nostart
Host changed
  HostName %[1]s.14
  IdentityFile %[2]s/key-box
  UserKnownHostsFile %[2]s/known_hosts_changed
Host down
  HostName %[1]s.1
  Port 2299
  IdentityFile %[2]s/key-box
Host *
  User root
  Port 2222
  UserKnownHostsFile %[2]s/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  IdentitiesOnly yes
`, rigNet, dir)
	must(t, os.WriteFile(p("ssh_config"), []byte(cfg), 0o600))
	must(t, os.MkdirAll(p("cbin"), 0o755))
	must(t, os.WriteFile(p("cbin/ssh"), []byte("#!/bin/sh\nexec /usr/bin/ssh -F "+p("ssh_config")+" \"$@\"\n"), 0o755))

	chome := t.TempDir()
	crt, err := os.MkdirTemp("/tmp", "bgrc")
	must(t, err)
	os.Chmod(crt, 0o700)
	g.crt = crt
	t.Cleanup(func() {
		// OpenSSH masters (ControlPersist) carry the runtime dir in
		// their command line.
		killLeftovers(t, crt)
		os.RemoveAll(crt)
	})
	var cvars []string
	for _, v := range os.Environ() {
		if k, _, _ := strings.Cut(v, "="); k != "PATH" && k != "HOME" && k != "BANGER_HOST" && !strings.HasPrefix(k, "XDG_") && !strings.HasPrefix(k, "SSH_") {
			cvars = append(cvars, v)
		}
	}
	cvars = append(cvars, "PATH="+p("cbin")+":"+sys, "HOME="+chome,
		"XDG_CONFIG_HOME="+filepath.Join(chome, "config"), "XDG_STATE_HOME="+filepath.Join(chome, "state"),
		"XDG_CACHE_HOME="+filepath.Join(chome, "cache"), "XDG_RUNTIME_DIR="+crt)
	g.client = &env{t: t, bin: e.bin, ns: cns, home: chome, vars: cvars}

	// sshd answers once it listens.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := exec.Command("ip", "netns", "exec", cns, p("cbin/ssh"), "-o", "ControlPath=none", "box", "true")
		c.Env = cvars
		out, err := c.CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd in %s does not answer: %v\n%s", e.ns, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return g
}

// TestRemote drives a remote host's banger through --host and through a
// context, with a local repository and a local patch file, and checks
// each way connecting can fail. Two VMs.
func TestRemote(t *testing.T) {
	g := newRemoteRig(t)
	c, e := g.client, g.remote
	fails := func(t *testing.T, args []string, wants ...string) {
		t.Helper()
		c.t = t
		r := c.banger(args...)
		t.Logf("  stderr: %s", r.err)
		if r.code != 1 {
			t.Errorf("banger %v: exit %d, want 1\n%s", args, r.code, r.err)
		}
		for _, w := range wants {
			if !strings.Contains(r.err, w) {
				t.Errorf("banger %v: stderr lacks %q:\n%s", args, w, r.err)
			}
		}
	}

	t.Run("errors", func(t *testing.T) {
		fails(t, []string{"--host", "ssh://down", "vm", "ls"}, "cannot reach ssh://down over ssh", "Connection refused")
		fails(t, []string{"--host", "ssh://nobanger", "vm", "ls"}, "no banger on the PATH of ssh://nobanger", "install banger and bangerd there", "command not found")
		fails(t, []string{"--host", "ssh://oldver", "vm", "ls"}, "the banger on ssh://oldver speaks API version 1 (banger v0.1.0-old), this banger speaks API version 2")
		fails(t, []string{"--host", "ssh://nostart", "vm", "ls"}, "the banger daemon on ssh://nostart cannot start", "vcpu")
		fails(t, []string{"--host", "ssh://changed", "vm", "ls"}, "cannot reach ssh://changed over ssh", "REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")
		// status never starts the remote daemon
		fails(t, []string{"--host", "ssh://box", "daemon", "status"}, "daemon is not running on ssh://box")
		if _, err := os.Stat(filepath.Join(e.runtimeDir(), "bangerd.pid")); err == nil {
			t.Error("daemon status started the remote daemon")
		}
	})

	repo := wsRepo(t)
	t.Run("run --rm with a local repository through --host", func(t *testing.T) {
		c.t, e.t = t, t
		r := c.banger("--host", "ssh://box", "vm", "run", "--rm", repo, "--", "sh", "-c", "pwd; git log --format=%s; cat README.md; ls; exit 7")
		if r.code != 7 {
			t.Fatalf("exit %d, want the guest's 7\n%s\n%s", r.code, r.out, r.err)
		}
		want := "/root/repo\nsecond\nfirst\nhello\nsecond\nREADME.md\nold.txt\nspace name.txt\nsrc\n"
		if r.out != want {
			t.Errorf("guest saw\n%s\nwant\n%s", r.out, want)
		}
		if !strings.Contains(r.err, "s] ") {
			t.Errorf("no progress lines on stderr:\n%s", r.err)
		}
		e.assertClean()
	})

	t.Run("context: create, ssh through the jump, export a patch, ls --json", func(t *testing.T) {
		c.t, e.t = t, t
		c.must("context", "create", "box", "--host", "ssh://box")
		c.must("context", "use", "box")
		if ls := c.must("context", "ls").out; !strings.Contains(ls, "box *") {
			t.Errorf("context ls:\n%s", ls)
		}
		c.must("vm", "create", "--name", "dev")
		if h := c.must("vm", "ssh", "dev", "--", "hostname").out; h != "dev\n" {
			t.Errorf("vm ssh dev -- hostname: %q", h)
		}
		kh, err := os.ReadFile(filepath.Join(c.home, "state", "banger", "remote", "box", "known_hosts"))
		if err != nil || !strings.HasPrefix(string(kh), "dev.vm ssh-ed25519 ") {
			t.Errorf("local known_hosts for the context: %q, %v", kh, err)
		}
		var vms []map[string]any
		if err := json.Unmarshal([]byte(c.must("vm", "ls", "--json").out), &vms); err != nil || len(vms) != 1 || vms[0]["name"] != "dev" {
			t.Errorf("vm ls --json through the context: %v %v", vms, err)
		}

		// Terminals and Ctrl-C work as with a local daemon: -t gets a
		// guest terminal, typed input reaches it from a local one, and
		// Ctrl-C (sent as a terminal does, to banger's whole process
		// group; ssh runs in a group of its own) is relayed to the guest
		// command over the same connection.
		if r := c.banger("vm", "exec", "dev", "-t", "--", "sh", "-c", "tty; stty size"); r.code != 0 || !strings.HasPrefix(r.out, "/dev/pts/") || !strings.HasSuffix(r.out, "\r\n24 80\r\n") {
			t.Errorf("vm exec -t: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
		}
		if r := c.bangerOnTerminal("echo typed-$((6*7)); exit 4\n", "vm", "exec", "dev", "-t", "--", "sh"); r.code != 4 || !strings.Contains(r.out, "typed-42") {
			t.Errorf("interactive vm exec -t: exit %d, stdout %q", r.code, r.out)
		}
		cmd, errb := c.startStreaming(2*time.Minute, "vm", "exec", "dev", "--", "sh", "-c", "echo started; exec sleep 600")
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || strings.Contains(errb.String(), "lost") {
				t.Errorf("Ctrl-C: %v, want exit 130 from the guest command; stderr:\n%s", err, errb)
			}
		case <-time.After(time.Minute):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("Ctrl-C did not end vm exec; stderr:\n%s", errb)
		}
		if r := c.banger("vm", "exec", "dev", "--", "sh", "-c", "pgrep -x sleep || echo none"); r.out != "none\n" {
			t.Errorf("the guest's sleep outlived Ctrl-C: %q", r.out)
		}

		c.must("vm", "workspace", "prepare", "dev", repo)
		c.must("vm", "ssh", "dev", "--", `set -e; cd /root/repo; printf 'hello\nsecond\nremote edit\n' > README.md; echo new > added.txt; git rm -q old.txt`)
		patch := filepath.Join(t.TempDir(), "remote.patch")
		c.must("vm", "workspace", "export", "dev", "-o", patch)
		clone := filepath.Join(t.TempDir(), "clone")
		gitIn(t, repo, "clone", "-q", repo, clone)
		gitIn(t, clone, "apply", patch)
		if b, _ := os.ReadFile(filepath.Join(clone, "README.md")); string(b) != "hello\nsecond\nremote edit\n" {
			t.Errorf("README.md after git apply: %q", b)
		}
		if _, err := os.Stat(filepath.Join(clone, "old.txt")); !os.IsNotExist(err) {
			t.Errorf("old.txt after git apply: %v", err)
		}

		// vm cp both ways with local files.
		local := filepath.Join(t.TempDir(), "in.txt")
		must(t, os.WriteFile(local, []byte("from the client\n"), 0o644))
		c.must("vm", "cp", local, "dev:/root/")
		back := filepath.Join(t.TempDir(), "back")
		must(t, os.MkdirAll(back, 0o755))
		c.must("vm", "cp", "dev:/root/in.txt", back)
		if b, err := os.ReadFile(filepath.Join(back, "in.txt")); string(b) != "from the client\n" {
			t.Errorf("vm cp round trip: %q, %v", b, err)
		}

		c.must("vm", "delete", "dev")
		// daemon stop through the context waits until the remote socket
		// no longer answers; status then says so without starting it.
		if r := c.must("daemon", "stop"); !strings.Contains(r.out, "bangerd stopped") {
			t.Errorf("daemon stop: %q", r.out)
		}
		if r := c.banger("daemon", "status"); r.code != 1 || !strings.Contains(r.err, "not running on ssh://box") {
			t.Errorf("daemon status after stop: exit %d, %s", r.code, r.err)
		}
		if r := c.banger("version", "--json"); r.code != 0 || !strings.Contains(r.out, `"running": false`) {
			t.Errorf("version with the remote daemon stopped: exit %d, %s %s", r.code, r.out, r.err)
		}
		if r := c.must("daemon", "start"); !strings.Contains(r.out, "bangerd started") {
			t.Errorf("daemon start: %q", r.out)
		}
		if r := c.must("version", "--json"); !strings.Contains(r.out, `"running": true`) {
			t.Errorf("version through the context: %s", r.out)
		}
		// doctor checks the remote machine (its own banger doctor, over
		// ssh): the runtime dir it reports is the remote user's.
		if r := c.banger("doctor", "--json"); (r.code != 0 && r.code != 1) || !strings.Contains(r.out, e.runtimeDir()) {
			t.Errorf("doctor through the context: exit %d\n%s\n%s", r.code, r.out, r.err)
		}
		if r := c.banger("ssh-config"); r.code != 1 || !strings.Contains(r.err, "banger vm ssh NAME") {
			t.Errorf("ssh-config through the context: exit %d, %s", r.code, r.err)
		}
		c.must("context", "use", "default")
		e.assertClean()
	})
}
