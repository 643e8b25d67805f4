package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
)

func TestFileSyncAtEveryStart(t *testing.T) {
	root := guestRoot(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[user]\n\tname = Ada \\\"the\\\" Dev\n\temail = ada@example.com\n"), 0o644)
	os.MkdirAll(filepath.Join(home, ".config", "gh"), 0o755)
	os.WriteFile(filepath.Join(home, ".config", "gh", "hosts.yml"), []byte("token: one\n"), 0o644)
	os.MkdirAll(filepath.Join(home, "tools", "private"), 0o700)
	os.WriteFile(filepath.Join(home, "tools", "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("run.sh", filepath.Join(home, "tools", "link"))

	h := newHarness(t)
	h.stop()
	h.cfg.FileSync = &[]config.FileSync{
		{Host: "~/.config/gh/hosts.yml", Guest: "~/.config/gh/hosts.yml"},
		{Host: "~/tools", Guest: "/root/bin/tools"},
		{Host: "~/missing.txt", Guest: "~/missing.txt"},
	}
	h.start()
	var warnings []string
	var vm api.VM
	must(t, h.client.Call(context.Background(), api.MethodVMCreate, api.CreateParams{Name: "dev", WaitSSH: true}, &vm,
		func(p api.Progress) {
			if p.Stage == "file_sync" {
				warnings = append(warnings, p.Message)
			}
		}))
	if len(warnings) != 1 || !strings.Contains(warnings[0], "~/missing.txt skipped") {
		t.Errorf("warnings %q", warnings)
	}
	g := func(p string) string { return filepath.Join(root, p) }
	checkSynced(t, g("root/.config/gh/hosts.yml"), "token: one\n", 0o600)
	checkSynced(t, g("root/bin/tools/run.sh"), "#!/bin/sh\n", 0o755)
	if st, err := os.Stat(g("root/bin/tools/private")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("private dir: %v %v", st, err)
	}
	if l, _ := os.Readlink(g("root/bin/tools/link")); l != "run.sh" {
		t.Errorf("link -> %q", l)
	}
	b, _ := os.ReadFile(g("etc/gitconfig"))
	if !strings.Contains(string(b), `name = "Ada \"the\" Dev"`) || !strings.Contains(string(b), `email = "ada@example.com"`) {
		t.Errorf("gitconfig:\n%s", b)
	}

	// Synced again at the next start, and a symlink the guest planted is
	// replaced, never written through.
	os.WriteFile(filepath.Join(home, ".config", "gh", "hosts.yml"), []byte("token: two\n"), 0o644)
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, []byte("keep"), 0o600)
	os.Remove(g("root/.config/gh/hosts.yml"))
	os.Symlink(outside, g("root/.config/gh/hosts.yml"))
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	must(t, h.call(api.MethodVMStart, api.NameParams{Name: "dev"}, nil))
	checkSynced(t, g("root/.config/gh/hosts.yml"), "token: two\n", 0o600)
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("wrote through the guest's symlink: %q", b)
	}

	// A directory the guest put in the way costs a warning, not the boot.
	os.RemoveAll(g("root/.config/gh"))
	os.Symlink(t.TempDir(), g("root/.config/gh"))
	warnings = nil
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	must(t, h.client.Call(context.Background(), api.MethodVMStart, api.NameParams{Name: "dev"}, &vm, func(p api.Progress) {
		if p.Stage == "file_sync" {
			warnings = append(warnings, p.Message)
		}
	}))
	if vm.State != "running" || len(warnings) != 2 || !strings.Contains(warnings[1], "refusing to write through") {
		t.Errorf("state %s, warnings %q", vm.State, warnings)
	}
}

func checkSynced(t *testing.T, p, body string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	st, _ := os.Lstat(p)
	if err != nil || string(b) != body || st.Mode().Perm() != mode || !st.Mode().IsRegular() {
		t.Errorf("%s: %q %v %v", p, b, st.Mode(), err)
	}
}
