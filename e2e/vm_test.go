package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVM walks the whole skeleton against one daemon: bad input that must
// change nothing, vm run --rm with exit-code propagation, and a long-lived
// VM through ssh, stop, start and delete.
func TestVM(t *testing.T) {
	e := newEnv(t)

	t.Run("kernel import yields an ELF vmlinux for firecracker", func(t *testing.T) {
		m, _ := filepath.Glob(filepath.Join(os.Getenv("BANGER_E2E_CACHE"), "banger", "kernels", "*", "vmlinux"))
		if len(m) == 0 {
			t.Fatal("no vmlinux in the kernel cache")
		}
		f, err := elf.Open(m[0])
		if err != nil {
			t.Fatalf("%s: %v", m[0], err)
		}
		defer f.Close()
		if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
			t.Errorf("%s: machine %v type %v", m[0], f.Machine, f.Type)
		}
		// The module disk, also added to an import cached before it existed.
		if _, err := os.Stat(filepath.Join(filepath.Dir(m[0]), "modules.ext4")); err != nil {
			t.Errorf("kernel import has no module disk: %v", err)
		}
	})

	t.Run("a daemon that cannot start says why", func(t *testing.T) {
		e.t = t
		e.stopDaemon()
		cfg := filepath.Join(e.home, "config", "banger", "config.toml")
		orig, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(cfg, append([]byte("boot_timeout = \"soon\"\n"), orig...), 0o600)
		r := e.banger("vm", "ls")
		os.WriteFile(cfg, orig, 0o600)
		if r.code == 0 || !strings.Contains(r.err, `invalid duration "soon"`) || !strings.Contains(r.err, "boot_timeout") {
			t.Errorf("vm ls with a broken config: exit %d, stderr %q", r.code, r.err)
		}
	})

	t.Run("bad input leaves nothing", func(t *testing.T) {
		e.t = t
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"vm", "create", "--name", "Bad_Name"}, "not a DNS label"},
			{[]string{"vm", "create", "--vcpu", "0"}, "--vcpu 0"},
			{[]string{"vm", "create", "--memory", "16"}, "at least"},
			{[]string{"vm", "create", "--image", "no-such-image"}, `image "no-such-image" not found`},
			{[]string{"vm", "run", "--rm"}, "defines no command: give one after --"},
			{[]string{"vm", "show", "nope"}, "no VM named"},
		} {
			r := e.banger(c.args...)
			if r.code == 0 || !strings.Contains(r.err, c.want) {
				t.Errorf("banger %v: exit %d, stderr %q; want failure mentioning %q", c.args, r.code, r.err, c.want)
			}
		}
		e.assertClean()
	})

	t.Run("run --rm propagates the exit code and leaves nothing", func(t *testing.T) {
		e.t = t
		r := e.banger("vm", "run", "--rm", "--", "sh", "-c", "uname -r; cat /etc/os-release; echo to-stderr >&2; exit 7")
		if r.code != 7 {
			t.Fatalf("exit %d, want 7\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
		}
		if !strings.Contains(r.out, "cloud-amd64") || !strings.Contains(r.out, "bookworm") {
			t.Errorf("stdout lacks the guest kernel release or os-release:\n%s", r.out)
		}
		if !strings.Contains(r.err, "spec: 2 vcpu · 1 GiB memory · 8 GiB disk") || !strings.Contains(r.err, "to-stderr") {
			t.Errorf("stderr lacks the spec line or the guest's stderr:\n%s", r.err)
		}
		e.assertClean()
	})

	t.Run("Ctrl-C during run --rm ends the command and removes the VM", func(t *testing.T) {
		e.t = t
		cmd, errb := e.startStreaming(2*time.Minute, "vm", "run", "--rm", "--", "sh", "-c", "echo started; exec sleep 600")
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Errorf("exit: %v, want 130; stderr:\n%s", err, errb.String())
		}
		e.assertClean()
	})

	t.Run("create ssh stop start keeps data, delete removes all", func(t *testing.T) {
		e.t = t
		// vm ssh right after create --no-wait waits for the boot and sshd.
		e.must("vm", "create", "--no-wait", "--name", "life", "--disk-size", "2G")
		if r := e.banger("vm", "create", "--name", "life"); r.code == 0 || !strings.Contains(r.err, "already exists") {
			t.Errorf("duplicate name: exit %d, stderr %q", r.code, r.err)
		}
		r := e.must("vm", "ssh", "life", "--", "echo kept > /root/x; echo sys > /etc/banger-e2e; hostname; sync")
		if strings.TrimSpace(r.out) != "life" || !strings.Contains(r.err, "waiting for life's sshd") {
			t.Errorf("guest hostname = %q, want life; stderr %q, want the waiting line", r.out, r.err)
		}
		// Several arguments after -- are an argv; one is a command line.
		if r := e.must("vm", "ssh", "life", "--", "sh", "-c", "echo a && echo b"); r.out != "a\nb\n" {
			t.Errorf("vm ssh -- sh -c 'echo a && echo b' printed %q", r.out)
		}
		if r := e.must("vm", "ssh", "life", "--", "printf", `%s\n`, "a b", "$HOME"); r.out != "a b\n$HOME\n" {
			t.Errorf("vm ssh -- printf printed %q, want the arguments literally", r.out)
		}
		e.must("vm", "stop", "life")
		if vms := e.vmList(); len(vms) != 1 || vms[0]["state"] != "stopped" {
			t.Fatalf("after stop: %v", vms)
		}
		e.must("vm", "start", "life")
		r = e.must("vm", "ssh", "life", "--", "cat /root/x /etc/banger-e2e")
		if r.out != "kept\nsys\n" {
			t.Errorf("after restart read %q, want kept/sys", r.out)
		}
		// The same VM through the agent, no ssh: output and exit code.
		if r := e.banger("vm", "exec", "life", "--", "sh", "-c", "cat /root/x; echo oops >&2; exit 3"); r.code != 3 || r.out != "kept\n" || r.err != "oops\n" {
			t.Errorf("vm exec: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
		}
		// With -t the command gets a guest terminal (80x24 when ours is
		// not one) ...
		if r := e.banger("vm", "exec", "life", "-t", "--", "sh", "-c", "tty; stty size"); r.code != 0 || !strings.HasPrefix(r.out, "/dev/pts/") || !strings.HasSuffix(r.out, "\r\n24 80\r\n") {
			t.Errorf("vm exec -t: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
		}
		// ... and from a real local terminal (script(1) gives the CLI one,
		// which it puts in raw mode) an interactive shell reads what is
		// typed and exits with its code.
		typed := "stty size; echo typed-$((6*7)); exit 4\n"
		r = e.bangerOnTerminal(typed, "vm", "exec", "life", "-t", "--", "sh")
		if r.code != 4 || !strings.Contains(r.out, "typed-42") {
			t.Errorf("interactive vm exec -t: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
		}
		// The kernel's module disk is mounted read-only where modprobe
		// looks, and a module that is not built in (loop, in Debian's
		// cloud kernel) loads from it.
		r = e.must("vm", "ssh", "life", "--", `set -e
mods=$(readlink -f /lib/modules/$(uname -r)) # /lib -> usr/lib in bookworm
awk -v m="$mods" '$2 == m { print $3, $4 }' /proc/self/mounts
if touch "$mods/x" 2>/dev/null; then echo writable; fi
modprobe loop
lsmod | grep -q '^loop ' && echo loop-loaded
modinfo -n loop`)
		if lines := strings.Split(r.out, "\n"); len(lines) < 3 ||
			!strings.HasPrefix(lines[0], "ext4 ro,") || lines[1] != "loop-loaded" || !strings.HasPrefix(lines[2], "/lib/modules/") {
			t.Errorf("modules in the guest:\n%s\nstderr:\n%s", r.out, r.err)
		}
		r = e.must("vm", "show", "life", "--json")
		if !strings.Contains(r.out, `"state": "running"`) {
			t.Errorf("vm show: %s", r.out)
		}

		// A guest presenting a key other than its pin is refused.
		kh := filepath.Join(e.stateDir(), "ssh", "known_hosts")
		orig, err := os.ReadFile(kh)
		if err != nil {
			t.Fatal(err)
		}
		fake := "life.vm ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
		os.WriteFile(kh, []byte(fake), 0o600)
		if r := e.banger("vm", "ssh", "life", "--", "true"); r.code == 0 || !strings.Contains(r.err, "man-in-the-middle") || !strings.Contains(r.err, "presented host key") {
			t.Errorf("ssh with a wrong pin: exit %d, stderr %q", r.code, r.err)
		}
		os.WriteFile(kh, orig, 0o600)

		e.must("vm", "delete", "life")
		e.assertClean()
		if b, _ := os.ReadFile(kh); strings.Contains(string(b), "life.vm") {
			t.Errorf("pin not dropped on delete: %s", b)
		}
	})
}

// bangerOnTerminal runs the CLI inside the namespace with a pseudo-terminal
// as its stdin and stdout (script(1) makes one), typing typed into it.
// stdout and stderr arrive together, as on a terminal.
func (e *env) bangerOnTerminal(typed string, args ...string) result {
	e.t.Helper()
	quoted := []string{shellQuote(filepath.Join(e.bin, "banger"))}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	cmd := exec.Command("ip", "netns", "exec", e.ns, "script", "-qefc", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = e.vars
	cmd.Stdin = strings.NewReader(typed)
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run banger %v on a terminal: %v", args, err)
	}
	e.t.Logf("banger %s (on a terminal) → exit %d", strings.Join(args, " "), code)
	return result{out: string(out), code: code}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
