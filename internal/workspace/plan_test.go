package workspace

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// selectionRepo has one of everything file selection must tell apart.
func selectionRepo(t *testing.T) *testRepo {
	r := newRepo(t)
	r.write("README.md", "hello\n", 0o644)
	r.write("run.sh", "#!/bin/sh\necho hi\n", 0o755)
	r.write("dir with space/new\nline.txt", "odd name\n", 0o644)
	r.write("sub/.gitignore", "*.log\n", 0o644)
	r.write("sub/keep.txt", "kept\n", 0o644)
	r.write(".gitignore", "build/\n.secret\n", 0o644)
	os.Symlink("README.md", filepath.Join(r.dir, "link"))
	r.commitAll("first")
	// The working tree beyond the commit:
	r.write(".env", "TOKEN=untracked-secret\n", 0o600)          // untracked
	r.write("notes/todo.txt", "todo\n", 0o644)                  // untracked, in a new dir
	r.write("tool", "#!/bin/sh\n", 0o755)                       // untracked, executable
	r.write(".secret", "ignored-secret\n", 0o600)               // ignored (top .gitignore)
	r.write("build/out.bin", "binary\n", 0o644)                 // ignored directory
	r.write("sub/debug.log", "ignored by nested rule\n", 0o644) // ignored (nested .gitignore)
	os.Symlink("/etc/passwd", filepath.Join(r.dir, "untracked-link"))
	return r
}

func TestPlanCopiesCommittedFilesOnlyByDefault(t *testing.T) {
	r := selectionRepo(t)
	p := r.plan(Options{})
	want := ".gitignore|README.md|dir with space/new\nline.txt|link|run.sh|sub/.gitignore|sub/keep.txt"
	if got := paths(p.Files()); got != want {
		t.Fatalf("files\n got %q\nwant %q", got, want)
	}
	if p.SkippedUntracked != 4 {
		t.Errorf("skipped untracked = %d, want 4 (.env, notes/todo.txt, tool, untracked-link)", p.SkippedUntracked)
	}
	modes := map[string]uint32{}
	for _, f := range p.Files() {
		modes[f.Path] = f.Mode
		if f.OID == "" || f.Untracked {
			t.Errorf("%s: %+v", f.Path, f)
		}
	}
	if modes["run.sh"] != ModeExec || modes["link"] != ModeSymlink || modes["README.md"] != ModeFile {
		t.Errorf("modes %v", modes)
	}
	if top := p.Top(); top.Branch != "main" || len(top.Commit) != 40 || top.ObjectFormat != "sha1" {
		t.Errorf("top %+v", top)
	}
}

func TestPlanIncludeUntrackedNeverIgnored(t *testing.T) {
	r := selectionRepo(t)
	p := r.plan(Options{IncludeUntracked: true})
	got := paths(p.Files())
	for _, want := range []string{".env", "notes/todo.txt", "tool", "untracked-link", "README.md"} {
		if !strings.Contains("|"+got+"|", "|"+want+"|") {
			t.Errorf("%s missing from %q", want, got)
		}
	}
	for _, ignored := range []string{".secret", "build/out.bin", "sub/debug.log"} {
		if strings.Contains(got, ignored) {
			t.Errorf("ignored %s selected: %q", ignored, got)
		}
	}
	modes := map[string]File{}
	for _, f := range p.Files() {
		modes[f.Path] = f
	}
	if modes["tool"].Mode != ModeExec || !modes["tool"].Untracked || modes["untracked-link"].Mode != ModeSymlink {
		t.Errorf("untracked modes: %+v", modes)
	}
	if p.SkippedUntracked != 0 {
		t.Errorf("skipped = %d", p.SkippedUntracked)
	}
}

func TestPlanCountsUncommittedAndStaged(t *testing.T) {
	r := newRepo(t)
	r.write("a.txt", "committed\n", 0o644)
	r.write("b.txt", "committed\n", 0o644)
	r.commitAll("one")
	r.write("a.txt", "edited, not committed\n", 0o644)
	os.Remove(filepath.Join(r.dir, "b.txt"))
	r.write("staged.txt", "added, not committed\n", 0o644)
	r.git("add", "staged.txt")
	p := r.plan(Options{})
	if p.Uncommitted != 2 || p.SkippedUntracked != 1 {
		t.Errorf("uncommitted %d (want 2), skipped %d (want 1: the staged file)", p.Uncommitted, p.SkippedUntracked)
	}
	// The deleted file still comes from the commit.
	if got := paths(p.Files()); got != "a.txt|b.txt" {
		t.Errorf("files %q", got)
	}
}

func TestPlanEmptyRepository(t *testing.T) {
	r := newRepo(t)
	p := r.plan(Options{})
	if top := p.Top(); top.Commit != "" || top.Branch != "main" || len(p.Files()) != 0 {
		t.Fatalf("plan %+v", top)
	}
	r.write("new.txt", "x", 0o644)
	p = r.plan(Options{IncludeUntracked: true})
	if got := paths(p.Files()); got != "new.txt" {
		t.Errorf("files %q", got)
	}
}

func TestPlanDetachedHEADAndFrom(t *testing.T) {
	r := newRepo(t)
	r.write("v.txt", "1\n", 0o644)
	r.commitAll("one")
	first := strings.TrimSpace(r.git("rev-parse", "HEAD"))
	r.write("v.txt", "2\n", 0o644)
	r.write("later.txt", "2\n", 0o644)
	r.commitAll("two")
	r.git("checkout", "-q", "--detach", "HEAD")
	if top := r.plan(Options{}).Top(); top.Branch != "" || top.Commit == first {
		t.Errorf("detached: %+v", top)
	}
	p := r.plan(Options{From: "HEAD~1", Branch: "fix/one"})
	if top := p.Top(); top.Commit != first || top.Branch != "fix/one" || paths(p.Files()) != "v.txt" {
		t.Errorf("--from: %+v files %q", top, paths(p.Files()))
	}
}

func TestPlanBadInput(t *testing.T) {
	r := newRepo(t)
	r.write("a", "a", 0o644)
	r.commitAll("a")
	bare := filepath.Join(t.TempDir(), "bare.git")
	runGit(t, r.dir, "clone", "-q", "--bare", r.dir, bare)
	plain := t.TempDir()
	file := filepath.Join(plain, "f")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Repo: filepath.Join(plain, "missing")}, "does not exist"},
		{Options{Repo: plain}, "not a git repository"},
		{Options{Repo: file}, "not a directory"},
		{Options{Repo: bare}, "bare repository"},
		{Options{Repo: r.dir, From: "HEAD"}, "--from needs --branch"},
		{Options{Repo: r.dir, From: "no-such-ref", Branch: "x"}, `--from "no-such-ref": no such commit`},
		{Options{Repo: r.dir, Branch: "bad..name"}, "not a valid branch name"},
	} {
		_, err := Make(context.Background(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.want)
		}
	}
	if _, err := Make(context.Background(), Options{Repo: plain}); !errors.Is(err, ErrNotRepo) {
		t.Errorf("not a repo: %v", err)
	}
}

// submoduleRepo has two submodules, one of them checked out.
func submoduleRepo(t *testing.T) *testRepo {
	lib := newRepo(t)
	lib.write("lib.go", "package lib\n", 0o644)
	lib.commitAll("lib")
	r := newRepo(t)
	r.write("main.go", "package main\n", 0o644)
	r.commitAll("main")
	r.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", lib.dir, "vendor/lib")
	r.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", lib.dir, "third")
	r.git("commit", "-q", "-m", "submodules")
	return r
}

func TestPlanSubmodules(t *testing.T) {
	r := submoduleRepo(t)
	_, err := Make(context.Background(), Options{Repo: r.dir})
	if err == nil || !strings.Contains(err.Error(), "submodules (third, vendor/lib)") || !strings.Contains(err.Error(), "--submodules") {
		t.Fatalf("err = %v", err)
	}
	p := r.plan(Options{Submodules: true})
	want := ".gitmodules|main.go|third|third/lib.go|vendor/lib|vendor/lib/lib.go"
	if got := paths(p.Files()); got != want || len(p.Repos) != 3 {
		t.Errorf("files %q (want %q), %d repos", got, want, len(p.Repos))
	}
	// A submodule that is not checked out cannot be copied.
	os.RemoveAll(filepath.Join(r.dir, "third"))
	os.MkdirAll(filepath.Join(r.dir, "third"), 0o755)
	if _, err := Make(context.Background(), Options{Repo: r.dir, Submodules: true}); err == nil || !strings.Contains(err.Error(), "submodule third is not checked out") {
		t.Errorf("err = %v", err)
	}
}

func TestListingQuotesOddNames(t *testing.T) {
	r := selectionRepo(t)
	var b bytes.Buffer
	if err := r.plan(Options{IncludeUntracked: true}).WriteListing(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"100755 commit    run.sh\n", "120000 commit    link\n", `100644 commit    "dir with space/new\nline.txt"` + "\n",
		"100600 untracked .env\n", "100755 untracked tool\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("listing lacks %q:\n%s", want, b.String())
		}
	}
}

func TestGuestPath(t *testing.T) {
	for in, want := range map[string]string{"": "/root/repo", "~/src/x": "/root/src/x", "/root/w/": "/root/w"} {
		if got, err := GuestPath(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"/root", "~/", "/etc/x", "/rootx/y", "relative", "~/a/../../etc", "~bob/x"} {
		if _, err := GuestPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
