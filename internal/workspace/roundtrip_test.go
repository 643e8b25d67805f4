package workspace

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
)

// importInto copies r into dir through an in-process agent, as the
// daemon does into a guest.
func importInto(t *testing.T, c *client.Client, o Options, dir string) (*Plan, proto.CopyResult) {
	t.Helper()
	p, err := Make(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	res, err := c.CopyIn(testCtx(t), proto.CopyInParams{Dir: dir, Fresh: true, DirMode: 0o755},
		func(tw *client.TarWriter) error { return p.Archive(testCtx(t), tw, tmp) })
	if err != nil {
		t.Fatal(err)
	}
	return p, res
}

// export runs the export script through the agent, as the daemon does.
func export(t *testing.T, c *client.Client, dir, base string, nameOnly bool) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	st, err := c.Exec(testCtx(t), ExportRequest(dir, base, nameOnly), nil, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), st.Code
}

func guestState(t *testing.T, dir string) (index []byte, status string) {
	t.Helper()
	index, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	return index, runGit(t, dir, "status", "--porcelain=v1", "-z", "--untracked-files=all")
}

func TestImportGivesACleanCheckoutWithHistory(t *testing.T) {
	r := selectionRepo(t)
	r.write("README.md", "dirty, not committed\n", 0o644)
	c := connectAgent(t)
	dir := filepath.Join(t.TempDir(), "guest", "repo")
	p, res := importInto(t, c, Options{Repo: r.dir}, dir)
	if res.Bytes < p.Bytes() {
		t.Errorf("copied %d bytes, plan has %d", res.Bytes, p.Bytes())
	}
	index, status := guestState(t, dir)
	if status != "" {
		t.Errorf("git status in the copy: %q", status)
	}
	// Real stat data: git status had nothing to refresh, so the index
	// the agent wrote is still byte for byte the same.
	if after, _ := os.ReadFile(filepath.Join(dir, ".git", "index")); !bytes.Equal(index, after) {
		t.Error("git status rewrote the agent's index")
	}
	if log := runGit(t, dir, "log", "--format=%s"); log != "first\n" {
		t.Errorf("history: %q", log)
	}
	if b := runGit(t, dir, "symbolic-ref", "HEAD"); b != "refs/heads/main\n" {
		t.Errorf("HEAD: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "README.md")); string(b) != "hello\n" {
		t.Errorf("README.md = %q: the commit's content, not the working tree's, must be copied", b)
	}
	for _, absent := range []string{".env", ".secret", "build", "sub/debug.log", "notes"} {
		if _, err := os.Lstat(filepath.Join(dir, absent)); err == nil {
			t.Errorf("%s reached the guest", absent)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "run.sh")); st.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode %v", st.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(dir, "link")); l != "README.md" {
		t.Errorf("link -> %q", l)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, ".git", "config"))
	if strings.Contains(string(cfg), "remote") || runGit(t, dir, "fsck", "--strict", "--no-progress") != "" {
		t.Errorf("config %q or fsck not clean", cfg)
	}
}

func TestImportUntrackedWhenAsked(t *testing.T) {
	r := selectionRepo(t)
	c := connectAgent(t)
	dir := filepath.Join(t.TempDir(), "repo")
	importInto(t, c, Options{Repo: r.dir, IncludeUntracked: true}, dir)
	if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != "TOKEN=untracked-secret\n" {
		t.Errorf(".env = %q", b)
	}
	if st, _ := os.Stat(filepath.Join(dir, ".env")); st.Mode().Perm() != 0o600 {
		t.Errorf(".env mode %v", st.Mode())
	}
	if _, err := os.Lstat(filepath.Join(dir, ".secret")); err == nil {
		t.Error("an ignored file was copied")
	}
	// The untracked files are part of the base: nothing to export yet.
	if out, _, code := export(t, c, dir, "", false); out != "" || code != 0 {
		t.Errorf("export right after import: code %d\n%s", code, out)
	}
}

// guestWork edits the guest copy in every way a patch must carry.
func guestWork(t *testing.T, dir string) {
	t.Helper()
	g := &testRepo{t: t, dir: dir}
	g.write("README.md", "hello\nedited in the guest\n", 0o644)
	g.write("added.txt", "new and committed\n", 0o644)
	g.git("add", "-A")
	g.git("commit", "-q", "-m", "guest commit")
	g.write("run.sh", "#!/bin/sh\necho changed, unstaged\n", 0o755)
	g.write("sub/keep.txt", "staged edit\n", 0o644)
	g.git("add", "sub/keep.txt")
	g.write("blob.bin", "\x00\x01\x02binary\xff\xfe", 0o644)
	g.write("new dir/untracked file.txt", "untracked, not ignored\n", 0o644)
	g.write("sub/ignored.log", "ignored in the guest too\n", 0o644)
	os.Chmod(filepath.Join(dir, "README.md"), 0o755)
	os.Remove(filepath.Join(dir, "dir with space/new\nline.txt"))
	os.Symlink("added.txt", filepath.Join(dir, "new-link"))
}

func TestExportRoundTripLeavesGuestStateAlone(t *testing.T) {
	r := selectionRepo(t)
	c := connectAgent(t)
	dir := filepath.Join(t.TempDir(), "repo")
	importInto(t, c, Options{Repo: r.dir}, dir)
	guestWork(t, dir)
	index, status := guestState(t, dir)
	refs := runGit(t, dir, "for-each-ref")

	patch, stderr, code := export(t, c, dir, "", false)
	if code != 0 || !strings.Contains(patch, "GIT binary patch") {
		t.Fatalf("export: code %d stderr %q\n%s", code, stderr, patch)
	}
	i2, s2 := guestState(t, dir)
	if !bytes.Equal(index, i2) || status != s2 || refs != runGit(t, dir, "for-each-ref") {
		t.Error("export changed the guest's index, status or refs")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".git", "banger-export-index*")); len(leftovers) > 0 {
		t.Errorf("throwaway index left: %v", leftovers)
	}

	// A clean host checkout of the base takes the patch and ends up with
	// the guest's tree.
	clone := filepath.Join(t.TempDir(), "clone")
	runGit(t, r.dir, "clone", "-q", r.dir, clone)
	pf := filepath.Join(t.TempDir(), "p.patch")
	os.WriteFile(pf, []byte(patch), 0o600)
	runGit(t, clone, "apply", "--check", pf)
	runGit(t, clone, "apply", pf)
	if got, want := treeOf(t, clone), treeOf(t, dir); got != want {
		t.Errorf("applied tree differs from the guest's:\nhost:  %s\nguest: %s", got, want)
	}

	names, _, _ := export(t, c, dir, "", true)
	want := "README.md\nadded.txt\nblob.bin\n\"dir with space/new\\nline.txt\"\nnew dir/untracked file.txt\nnew-link\nrun.sh\nsub/keep.txt\n"
	if names != want {
		t.Errorf("--name-only:\n%s\nwant\n%s", names, want)
	}
}

// treeOf hashes a working tree (tracked and untracked, not ignored)
// without touching its index.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	idx := filepath.Join(t.TempDir(), "index")
	add := exec.Command("git", "-C", dir, "add", "-A")
	add.Env = append(os.Environ(), "GIT_INDEX_FILE="+idx)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	w := exec.Command("git", "-C", dir, "ls-files", "-s")
	w.Env = append(os.Environ(), "GIT_INDEX_FILE="+idx)
	out, err := w.Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestExportEdgeCases(t *testing.T) {
	r := newRepo(t)
	r.write("a.txt", "a\n", 0o644)
	r.commitAll("one")
	r.write("a.txt", "b\n", 0o644)
	r.commitAll("two")
	c := connectAgent(t)
	dir := filepath.Join(t.TempDir(), "repo")
	importInto(t, c, Options{Repo: r.dir}, dir)

	if out, errs, code := export(t, c, dir, "", false); out != "" || code != 0 {
		t.Errorf("nothing changed: %q %q %d", out, errs, code)
	}
	// --base reaches back into the imported history.
	out, _, code := export(t, c, dir, "HEAD~1", false)
	if code != 0 || !strings.Contains(out, "-a\n+b\n") {
		t.Errorf("--base HEAD~1: %d\n%s", code, out)
	}
	for _, tc := range []struct{ dir, base, want string }{
		{dir, "no-such-ref", "--base no-such-ref: no such commit"},
		{filepath.Join(dir, "missing"), "", "no workspace at"},
		{t.TempDir(), "", "not a git repository"},
	} {
		_, errs, code := export(t, c, tc.dir, tc.base, false)
		if code != ExportUsageError || !strings.Contains(errs, tc.want) {
			t.Errorf("%+v: code %d stderr %q", tc, code, errs)
		}
	}
	// A repository banger did not import needs --base.
	other := newRepo(t)
	other.write("x", "x", 0o644)
	other.commitAll("x")
	if _, errs, code := export(t, c, other.dir, "", false); code != ExportUsageError || !strings.Contains(errs, "give the commit to diff against with --base") {
		t.Errorf("foreign repo: %d %q", code, errs)
	}
}

func TestImportEmptyRepoAndBranchFrom(t *testing.T) {
	c := connectAgent(t)
	empty := newRepo(t)
	dir := filepath.Join(t.TempDir(), "empty")
	importInto(t, c, Options{Repo: empty.dir}, dir)
	if b := runGit(t, dir, "status", "--porcelain"); b != "" {
		t.Errorf("status %q", b)
	}
	os.WriteFile(filepath.Join(dir, "first.txt"), []byte("first\n"), 0o644)
	out, _, code := export(t, c, dir, "", false)
	if code != 0 || !strings.Contains(out, "+++ b/first.txt") {
		t.Errorf("export from an empty repo: %d %q", code, out)
	}

	r := newRepo(t)
	r.write("v", "1\n", 0o644)
	r.commitAll("one")
	r.write("v", "2\n", 0o644)
	r.commitAll("two")
	dir2 := filepath.Join(t.TempDir(), "from")
	importInto(t, c, Options{Repo: r.dir, From: "HEAD~1", Branch: "topic"}, dir2)
	if b, _ := os.ReadFile(filepath.Join(dir2, "v")); string(b) != "1\n" {
		t.Errorf("v = %q", b)
	}
	if h := runGit(t, dir2, "rev-parse", "--abbrev-ref", "HEAD"); h != "topic\n" {
		t.Errorf("HEAD %q", h)
	}
	if s := runGit(t, dir2, "status", "--porcelain"); s != "" {
		t.Errorf("status %q", s)
	}
}

func TestImportSubmodules(t *testing.T) {
	r := submoduleRepo(t)
	c := connectAgent(t)
	dir := filepath.Join(t.TempDir(), "repo")
	importInto(t, c, Options{Repo: r.dir, Submodules: true}, dir)
	if s := runGit(t, dir, "status", "--porcelain", "--ignore-submodules=none"); s != "" {
		t.Errorf("status %q", s)
	}
	if s := runGit(t, filepath.Join(dir, "vendor/lib"), "status", "--porcelain"); s != "" {
		t.Errorf("submodule status %q", s)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "vendor/lib/lib.go")); string(b) != "package lib\n" {
		t.Errorf("lib.go %q", b)
	}
	if out, errs, code := export(t, c, dir, "", false); out != "" || code != 0 {
		t.Errorf("export right after import: %d %q %q", code, out, errs)
	}
}

func TestArchiveFailsCleanlyOnVanishingFile(t *testing.T) {
	r := selectionRepo(t)
	p := r.plan(Options{IncludeUntracked: true})
	os.Remove(filepath.Join(r.dir, ".env"))
	c := connectAgent(t)
	parent := t.TempDir()
	_, err := c.CopyIn(context.Background(), proto.CopyInParams{Dir: filepath.Join(parent, "repo"), Fresh: true},
		func(tw *client.TarWriter) error { return p.Archive(context.Background(), tw, t.TempDir()) })
	if err == nil || !strings.Contains(err.Error(), ".env") {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

func TestImportSHA256Repository(t *testing.T) {
	r := &testRepo{t: t, dir: filepath.Join(t.TempDir(), "repo")}
	os.MkdirAll(r.dir, 0o755)
	r.git("init", "-q", "-b", "main", "--object-format=sha256")
	r.write("a.txt", "a\n", 0o644)
	r.commitAll("one")
	c := connectAgent(t)
	dir := filepath.Join(t.TempDir(), "copy")
	importInto(t, c, Options{Repo: r.dir}, dir)
	index, status := guestState(t, dir)
	if status != "" {
		t.Errorf("status %q", status)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ".git", "index")); !bytes.Equal(index, after) {
		t.Error("git status rewrote the index")
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("b\n"), 0o644)
	if out, _, code := export(t, c, dir, "", false); code != 0 || !strings.Contains(out, "+b") {
		t.Errorf("export: %d %q", code, out)
	}
}
