package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// apiAddr is where the test's daemon serves the HTTP API: loopback of
// the test's own namespace.
const apiAddr = "127.0.0.1:3000"

// sdkEnv is an env whose daemon serves the HTTP API, with a key made by
// the CLI, for node scripts that use E2B's SDK (e2e/e2bsdk).
type sdkEnv struct {
	*env
	key string
}

func newSDKEnv(t *testing.T, extraConfig string) *sdkEnv {
	t.Helper()
	if _, err := os.Stat(filepath.Join("e2bsdk", "node_modules", "e2b")); err != nil {
		t.Fatal("e2e/e2bsdk has no node_modules/e2b: run `make setup-test` (npm ci there)")
	}
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.home, "config", "banger", "config.toml"), []byte(
		"[snapshots]\nwarm = false\n[vm_defaults]\nvcpu = 2\nmemory = 1024\n"+extraConfig+"[api]\nlisten = \""+apiAddr+"\"\n"), 0o600)
	run(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
	key := strings.TrimSpace(e.must("api", "key", "create", "--name", "e2e", "--quiet").out)
	if !strings.HasPrefix(key, "bgr_") {
		t.Fatalf("api key create printed %q", key)
	}
	return &sdkEnv{env: e, key: key}
}

// node runs an e2bsdk script inside the namespace and decodes the JSON
// line it prints into v.
func (s *sdkEnv) node(v any, script string, args ...string) {
	s.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", s.ns, "node", script}, args...)...)
	cmd.Dir = "e2bsdk"
	cmd.Env = append(os.Environ(), "E2B_API_URL=http://"+apiAddr, "E2B_SANDBOX_URL=http://"+apiAddr, "E2B_API_KEY="+s.key)
	start := time.Now()
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	s.t.Logf("node %s %s → %s in %s", script, strings.Join(args, " "), strings.TrimSpace(string(out)), time.Since(start).Round(time.Millisecond))
	if err != nil {
		s.t.Fatalf("node %s %v: %v\n%s", script, args, err, stderr)
	}
	if err := json.Unmarshal(out, v); err != nil {
		s.t.Fatalf("node %s %v: output %q: %v", script, args, out, err)
	}
}

// curl sends one request to the API inside the namespace (body: a file
// to send, or none) and checks its status.
func (s *sdkEnv) curl(method, path, body string, status int) string {
	s.t.Helper()
	args := []string{"netns", "exec", s.ns, "curl", "-sS", "-X", method, "-H", "X-API-KEY: " + s.key,
		"-w", "\n%{http_code}", "http://" + apiAddr + path}
	if body != "" {
		args = append(args, "--data-binary", "@"+body)
	}
	out := run(s.t, "ip", args...)
	i := strings.LastIndex(out, "\n")
	if got := out[i+1:]; got != fmt.Sprint(status) {
		s.t.Fatalf("%s %s: status %s, want %d\n%s", method, path, got, status, out[:i])
	}
	return out[:i]
}

type sbInfo struct {
	State    string            `json:"state"`
	Metadata map[string]string `json:"metadata"`
	NotFound bool              `json:"notFound"`
}

// TestE2BControlPlane drives the control plane with the unmodified e2b
// SDK: a wrong key, create, list by metadata, pause and connect, kill,
// a timeout that pauses (autoPause) and one that expires across a daemon
// restart. Three guests, one at a time.
func TestE2BControlPlane(t *testing.T) {
	s := newSDKEnv(t, "")

	var bad struct {
		Error string `json:"error"`
		Auth  bool   `json:"auth"`
	}
	s.node(&bad, "control.mjs", "badkey")
	if !bad.Auth {
		t.Fatalf("a wrong key gave %+v, want the SDK's AuthenticationError", bad)
	}

	var created struct {
		SandboxID string  `json:"sandboxId"`
		MS        float64 `json:"ms"`
	}
	s.node(&created, "control.mjs", "create", "suite=e2e-one")
	id := created.SandboxID
	vms := s.vmList()
	if len(vms) != 1 || vms[0]["name"] != id || vms[0]["state"] != "running" {
		t.Fatalf("vm ls after Sandbox.create: %v, want %s running", vms, id)
	}

	var list struct {
		IDs []string `json:"ids"`
	}
	s.node(&list, "control.mjs", "list", "suite=e2e-one")
	if !slices.Equal(list.IDs, []string{id}) {
		t.Fatalf("list by metadata suite=e2e-one: %v, want [%s]", list.IDs, id)
	}
	s.node(&list, "control.mjs", "list", "suite=other")
	if len(list.IDs) != 0 {
		t.Fatalf("list by metadata suite=other: %v, want none", list.IDs)
	}
	var info sbInfo
	s.node(&info, "control.mjs", "info", id)
	if info.State != "running" || info.Metadata["suite"] != "e2e-one" {
		t.Fatalf("info: %+v", info)
	}

	t.Run("pause and connect", func(t *testing.T) {
		var p struct{ Paused bool }
		s.node(&p, "control.mjs", "pause", id)
		if !p.Paused {
			t.Fatal("pause returned false for a running sandbox")
		}
		s.node(&info, "control.mjs", "info", id)
		if v := s.vmList(); info.State != "paused" || v[0]["state"] != "saved" {
			t.Fatalf("after pause: sandbox %s, VM %v; want paused, saved", info.State, v[0]["state"])
		}
		s.node(&p, "control.mjs", "pause", id)
		if p.Paused {
			t.Fatal("pausing a paused sandbox returned true")
		}
		var c struct{ SandboxID string }
		s.node(&c, "control.mjs", "connect", id)
		s.node(&info, "control.mjs", "info", id)
		if info.State != "running" {
			t.Fatalf("after connect: %+v", info)
		}
		// The guest continued where it was: its agent answers.
		if r := s.banger("vm", "exec", id, "--", "true"); r.code != 0 {
			t.Fatalf("vm exec after connect: exit %d: %s", r.code, r.err)
		}
	})

	t.Run("workspace over HTTP", func(t *testing.T) {
		repo := t.TempDir()
		for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@e2e", "commit", "-qm", "one"}} {
			if args[0] == "add" {
				must(t, os.WriteFile(filepath.Join(repo, "a.txt"), []byte("one\n"), 0o644))
			}
			run(t, "git", append([]string{"-C", repo}, args...)...)
		}
		archive := filepath.Join(t.TempDir(), "repo.tar")
		run(t, "tar", "-C", repo, "-cf", archive, ".")
		out := s.curl("POST", "/banger/sandboxes/"+id+"/workspace?path=/root/ws", archive, 201)
		if !strings.Contains(out, `"guest_path":"/root/ws"`) {
			t.Fatalf("import: %s", out)
		}
		if r := s.banger("vm", "exec", id, "--", "sh", "-c", "echo two >> /root/ws/a.txt"); r.code != 0 {
			t.Fatalf("edit in the guest: %d %s", r.code, r.err)
		}
		patch := s.curl("GET", "/banger/sandboxes/"+id+"/workspace/patch?path=/root/ws&base=HEAD", "", 200)
		if !strings.Contains(patch, "+two") {
			t.Fatalf("patch: %q", patch)
		}
		pf := filepath.Join(t.TempDir(), "p.patch")
		must(t, os.WriteFile(pf, []byte(patch), 0o644))
		run(t, "git", "-C", repo, "apply", pf)
		if b, _ := os.ReadFile(filepath.Join(repo, "a.txt")); string(b) != "one\ntwo\n" {
			t.Fatalf("after git apply: %q", b)
		}
		s.curl("POST", "/banger/sandboxes/"+id+"/workspace?path=/root/ws", archive, 409) // the path exists
	})

	t.Run("fork and network", func(t *testing.T) {
		// The SDK's fork is banger's vm fork: a running child with its own
		// identity that continues from the parent's state.
		s.must("vm", "exec", id, "--", "sh", "-c", "echo before-fork > /root/forked")
		var f struct{ IDs []string }
		s.node(&f, "control.mjs", "fork", id, "1")
		if len(f.IDs) != 1 || !strings.HasPrefix(f.IDs[0], "sb-") {
			t.Fatalf("fork: %+v", f)
		}
		child := f.IDs[0]
		if r := s.banger("vm", "exec", child, "--", "sh", "-c", "cat /root/forked; hostname"); r.code != 0 || r.out != "before-fork\n"+child+"\n" {
			t.Fatalf("the child: exit %d %q %s", r.code, r.out, r.err)
		}
		var info struct{ State string }
		s.node(&info, "control.mjs", "info", child)
		if info.State != "running" {
			t.Fatalf("the child's sandbox: %+v", info)
		}
		// E2B's network update is the VM's policy (issue 16).
		var ok struct{ OK bool }
		s.node(&ok, "control.mjs", "network", child, "192.0.2.0/24", "198.51.100.0/24")
		var shown struct {
			Net struct {
				Mode     string   `json:"mode"`
				AllowOut []string `json:"allow_out"`
				DenyOut  []string `json:"deny_out"`
			} `json:"net"`
		}
		show := s.must("vm", "show", child, "--json")
		if err := json.Unmarshal([]byte(show.out), &shown); err != nil || shown.Net.Mode != "nat" ||
			!slices.Equal(shown.Net.AllowOut, []string{"192.0.2.0/24"}) || !slices.Equal(shown.Net.DenyOut, []string{"198.51.100.0/24"}) {
			t.Fatalf("policy after updateNetwork (%v): %s", err, show.out)
		}
		var k struct{ Killed bool }
		s.node(&k, "control.mjs", "kill", child)
		if !k.Killed {
			t.Fatal("kill of the child returned false")
		}
	})

	t.Run("kill", func(t *testing.T) {
		var k struct{ Killed bool }
		s.node(&k, "control.mjs", "kill", id)
		if !k.Killed {
			t.Fatal("kill returned false")
		}
		s.node(&info, "control.mjs", "info", id)
		if !info.NotFound {
			t.Fatalf("after kill: %+v", info)
		}
		s.node(&k, "control.mjs", "kill", id)
		if k.Killed {
			t.Fatal("killing a killed sandbox returned true")
		}
	})

	t.Run("timeout pauses with autoPause", func(t *testing.T) {
		s.node(&created, "control.mjs", "create", "suite=e2e-pause", "600000", "pause")
		id3 := created.SandboxID
		var ok struct{ OK bool }
		s.node(&ok, "control.mjs", "settimeout", id3, "3000")
		deadline := time.Now().Add(90 * time.Second)
		for {
			s.node(&info, "control.mjs", "info", id3)
			if info.State == "paused" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sandbox %s not paused 90 s after a 3 s timeout: %+v", id3, info)
			}
			time.Sleep(time.Second)
		}
		if v := s.vmList(); len(v) != 1 || v[0]["state"] != "saved" {
			t.Fatalf("VM after an autoPause timeout: %v, want saved", v)
		}
		var c struct{ SandboxID string }
		s.node(&c, "control.mjs", "connect", id3)
		if r := s.banger("vm", "exec", id3, "--", "true"); r.code != 0 {
			t.Fatalf("vm exec after connect: exit %d: %s", r.code, r.err)
		}
		var k struct{ Killed bool }
		s.node(&k, "control.mjs", "kill", id3)
	})

	t.Run("timeout survives a daemon restart", func(t *testing.T) {
		s.node(&created, "control.mjs", "create", "suite=e2e-two")
		id2 := created.SandboxID
		var ok struct{ OK bool }
		s.node(&ok, "control.mjs", "settimeout", id2, "8000")
		s.must("daemon", "stop")
		time.Sleep(10 * time.Second) // the deadline passes while no daemon runs
		deadline := time.Now().Add(60 * time.Second)
		for {
			vms := s.vmList() // starts the daemon, whose reaper acts at once
			if len(vms) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sandbox %s still there a minute after its timeout: %v", id2, vms)
			}
			time.Sleep(time.Second)
		}
		s.node(&info, "control.mjs", "info", id2)
		if !info.NotFound {
			t.Fatalf("expired sandbox: %+v", info)
		}
	})
	s.assertClean()
}

// e2bVersion is the e2b package's version in e2bsdk/node_modules.
func e2bVersion(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("e2bsdk", "node_modules", "e2b", "package.json"))
	must(t, err)
	var p struct{ Version string }
	must(t, json.Unmarshal(b, &p))
	return p.Version
}
