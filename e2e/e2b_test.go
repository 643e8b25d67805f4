package e2e

import (
	"encoding/json"
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

type sbInfo struct {
	State    string            `json:"state"`
	Metadata map[string]string `json:"metadata"`
	NotFound bool              `json:"notFound"`
}

// TestE2BControlPlane drives the control plane with the unmodified e2b
// SDK: a wrong key, create, list by metadata, pause and connect, kill,
// and a timeout that expires across a daemon restart. Two guests.
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
