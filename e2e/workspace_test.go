package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wsRepo is a host repository with history, an untracked secret and an
// ignored one.
func wsRepo(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "repo")
	files := map[string]string{
		"README.md": "hello\n", "src/main.c": "int main(void) { return 0; }\n", "old.txt": "to be deleted\n",
		".gitignore": "secret.key\n", "space name.txt": "spaces\n",
	}
	for name, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "-c", "user.name=h", "-c", "user.email=h@example.com", "commit", "-q", "-m", "first")
	must(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("hello\nsecond\n"), 0o644))
	gitIn(t, dir, "-c", "user.name=h", "-c", "user.email=h@example.com", "commit", "-q", "-am", "second")
	must(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("TOKEN=untracked-e2e-secret\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "secret.key"), []byte("ignored-e2e-secret\n"), 0o600))
	return dir
}

// TestWorkspace imports repositories into real guests, edits them there
// and takes the edits back as a patch.
func TestWorkspace(t *testing.T) {
	e := newEnv(t)
	repo := wsRepo(t)
	// The daemon (started by the first call) reads this config and the
	// host user's git identity.
	must(t, os.WriteFile(filepath.Join(e.home, ".gitconfig"), []byte("[user]\n\tname = E2E User\n\temail = e2e@example.com\n"), 0o644))
	os.MkdirAll(filepath.Join(e.home, ".config", "x"), 0o700)
	must(t, os.WriteFile(filepath.Join(e.home, ".config", "x", "token"), []byte("synced\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(e.home, "config", "banger", "config.toml"), []byte("[snapshots]\nwarm = false\n[vm_defaults]\nvcpu = 2\nmemory = 1024\n\n"+
		"[[file_sync]]\nhost = \"~/.config/x/token\"\nguest = \"~/.config/x/token\"\n\n"+
		"[[file_sync]]\nhost = \"~/not-there\"\nguest = \"~/not-there\"\n"), 0o600))

	t.Run("run --rm with a repository: committed files and history, no secrets", func(t *testing.T) {
		e.t = t
		r := e.banger("vm", "run", "--rm", repo, "--", "sh", "-c",
			"pwd; git log --format=%s; git status --porcelain; ls -A; stat -c %a ~/.config/x/token; cat ~/.config/x/token; git config user.email")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
		}
		want := "/root/repo\nsecond\nfirst\n.git\n.gitignore\nREADME.md\nold.txt\nspace name.txt\nsrc\n600\nsynced\ne2e@example.com\n"
		if r.out != want {
			t.Errorf("guest saw\n%s\nwant\n%s", r.out, want)
		}
		if !strings.Contains(r.err, "1 untracked file not copied (--include-untracked") || !strings.Contains(r.err, "~/not-there skipped") {
			t.Errorf("stderr lacks the untracked note or the file_sync warning:\n%s", r.err)
		}
		e.assertClean()
	})

	t.Run("untracked files only when asked, ignored ones never", func(t *testing.T) {
		e.t = t
		r := e.banger("vm", "run", "--rm", "--include-untracked", repo, "--", "sh", "-c", "cat .env; ls secret.key 2>&1; grep -rl ignored-e2e-secret /root /tmp /etc 2>/dev/null | wc -l")
		if !strings.Contains(r.out, "TOKEN=untracked-e2e-secret") || !strings.Contains(r.out, "No such file") || !strings.HasSuffix(r.out, "0\n") {
			t.Errorf("exit %d, guest saw:\n%s\n%s", r.code, r.out, r.err)
		}
		e.assertClean()
	})

	t.Run("edit in the guest, export, apply on a clean host checkout", func(t *testing.T) {
		e.t = t
		e.must("vm", "create", "--name", "ws")
		e.must("vm", "workspace", "prepare", "ws", repo)
		e.must("vm", "ssh", "ws", "--", `set -e; cd /root/repo
printf 'hello\nsecond\nguest edit\n' > README.md
echo 'new file' > added.txt
git add -A && git commit -q -m 'guest commit'
echo 'unstaged' >> src/main.c
printf '\000\001binary\377' > blob.bin
git rm -q old.txt
chmod +x space\ name.txt
echo 'untracked in guest' > 'new dir.txt'`)
		before := e.must("vm", "ssh", "ws", "--", "cd /root/repo && sha256sum .git/index && git status --porcelain").out
		patch := filepath.Join(t.TempDir(), "guest.patch")
		e.must("vm", "workspace", "export", "ws", "-o", patch)
		names := e.must("vm", "workspace", "export", "ws", "--name-only").out
		after := e.must("vm", "ssh", "ws", "--", "cd /root/repo && sha256sum .git/index && git status --porcelain").out
		if before != after {
			t.Errorf("export changed the guest's index or status:\nbefore\n%s\nafter\n%s", before, after)
		}
		if names != "README.md\nadded.txt\nblob.bin\nnew dir.txt\nold.txt\nspace name.txt\nsrc/main.c\n" {
			t.Errorf("--name-only:\n%s", names)
		}
		clone := filepath.Join(t.TempDir(), "clone")
		gitIn(t, repo, "clone", "-q", repo, clone)
		gitIn(t, clone, "apply", "--check", patch)
		gitIn(t, clone, "apply", patch)
		host := treeListing(t, clone)
		guest := e.must("vm", "ssh", "ws", "--", `cd /root/repo && i=$(mktemp) && cp .git/index $i && GIT_INDEX_FILE=$i git add -A && GIT_INDEX_FILE=$i git ls-files -s; rm -f $i`).out
		if host != guest {
			t.Errorf("host tree after git apply differs from the guest's:\nhost\n%s\nguest\n%s", host, guest)
		}
		// The guest's commit carries the host user's identity.
		if a := e.must("vm", "ssh", "ws", "--", "git -C /root/repo log -1 --format=%an").out; a != "E2E User\n" {
			t.Errorf("guest commit author %q", a)
		}
	})

	t.Run("nothing changed: empty export with a note", func(t *testing.T) {
		e.t = t
		e.must("vm", "workspace", "prepare", "ws", repo, "--guest-path", "~/clean", "--from", "HEAD~1", "--branch", "topic")
		r := e.must("vm", "workspace", "export", "ws", "--guest-path", "~/clean")
		if r.out != "" || !strings.Contains(r.err, "no changes since the import") {
			t.Errorf("stdout %q stderr %q", r.out, r.err)
		}
		if b := e.must("vm", "ssh", "ws", "--", "git -C /root/clean rev-parse --abbrev-ref HEAD; cat /root/clean/README.md").out; b != "topic\nhello\n" {
			t.Errorf("--from HEAD~1 --branch topic: %q", b)
		}
	})

	t.Run("a repository the daemon cannot see", func(t *testing.T) {
		e.t = t
		if e.banger("vm", "show", "ws").code != 0 { // this subtest run alone
			e.must("vm", "create", "--name", "ws")
		}
		// The CLI runs in its own mount namespace, where the repository
		// is on a tmpfs; the daemon's view of that directory is empty.
		private := t.TempDir()
		script := `set -e; mount -t tmpfs banger-e2e "$1"; cp -a "$2" "$1/repo"
exec ip netns exec "$3" "$4" vm workspace prepare ws "$1/repo" --guest-path '~/private'`
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
			private, repo, e.ns, filepath.Join(e.bin, "banger"))
		cmd.Env = e.vars
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("prepare from a private mount namespace: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(private, "repo")); !os.IsNotExist(err) {
			t.Fatalf("the repository is visible outside the CLI's namespace: %v", err)
		}
		if b := e.must("vm", "ssh", "ws", "--", "cd /root/private && cat README.md && git log --format=%s && rm -rf /root/private").out; b != "hello\nsecond\nsecond\nfirst\n" {
			t.Errorf("guest saw %q", b)
		}
	})

	t.Run("vm cp in and out through the agent, vm logs", func(t *testing.T) {
		e.t = t
		if e.banger("vm", "show", "ws").code != 0 { // this subtest run alone
			e.must("vm", "create", "--name", "ws")
		}
		testCopyAndLogs(t, e, "ws")
	})

	t.Run("bad input fails clearly and copies nothing", func(t *testing.T) {
		e.t = t
		bare := filepath.Join(t.TempDir(), "bare.git")
		gitIn(t, repo, "clone", "-q", "--bare", repo, bare)
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"vm", "workspace", "prepare", "ws", t.TempDir()}, "not a git repository"},
			{[]string{"vm", "workspace", "prepare", "ws", bare}, "bare repository"},
			{[]string{"vm", "workspace", "prepare", "ws", filepath.Join(repo, "nope")}, "does not exist"},
			{[]string{"vm", "workspace", "prepare", "ws", repo, "--from", "v9.9", "--branch", "x"}, "no such commit"},
			{[]string{"vm", "workspace", "prepare", "ws", repo, "--guest-path", "/etc/repo"}, "must be below /root/"},
			{[]string{"vm", "workspace", "prepare", "ws", repo}, "already exists"},
			{[]string{"vm", "workspace", "export", "ws", "--base", "no-such-ref"}, "no such commit"},
			{[]string{"vm", "run", "--rm", t.TempDir(), "--", "true"}, "not a git repository"},
		} {
			if r := e.banger(c.args...); r.code == 0 || !strings.Contains(r.err, c.want) {
				t.Errorf("banger %v: exit %d, stderr %q; want failure mentioning %q", c.args, r.code, r.err, c.want)
			}
		}
		if ls := e.banger("vm", "ssh", "ws", "--", "ls -A /root | grep -v -e '^\\.' -e lost+found; ls /etc/repo 2>&1").out; ls != "clean\nrepo\nls: cannot access '/etc/repo': No such file or directory\n" {
			t.Errorf("guest /root after bad input:\n%s", ls)
		}
		e.must("vm", "stop", "ws")
		for _, args := range [][]string{{"vm", "workspace", "prepare", "ws", repo, "--guest-path", "~/x"}, {"vm", "workspace", "export", "ws"},
			{"vm", "cp", "ws:/etc/hostname", t.TempDir()}} {
			if r := e.banger(args...); r.code == 0 || !strings.Contains(r.err, "banger vm start ws") {
				t.Errorf("%v on a stopped VM: exit %d, stderr %q", args, r.code, r.err)
			}
		}
		e.must("vm", "delete", "ws")
		e.assertClean()
	})
}

// treeListing is `git ls-files -s` of a working tree as `git add -A`
// would stage it, through a throwaway index.
func treeListing(t *testing.T, dir string) string {
	idx := filepath.Join(t.TempDir(), "index")
	for _, args := range [][]string{{"add", "-A"}, {"ls-files", "-s"}} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_INDEX_FILE="+idx)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		if args[0] == "ls-files" {
			return string(out)
		}
	}
	return ""
}
