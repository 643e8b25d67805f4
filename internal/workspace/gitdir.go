package workspace

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// BaseTreeFile is where, inside the guest's git directory, an import
// records the tree it copied in: export diffs against it by default.
const BaseTreeFile = "banger/base-tree"

// Empty tree ids by object format: the base of a repository without
// commits.
var emptyTrees = map[string]string{
	"sha1":   "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
	"sha256": "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
}

type packResult struct {
	pack, idx string // host files; "" when there is nothing to send
	baseTree  string
	err       error
}

// buildPack writes, under dir, a pack of the commit's history and of the
// import's base tree (which holds the untracked files copied).
func buildPack(ctx context.Context, r *Repo, dir string) packResult {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return packResult{err: err}
	}
	g := git{dir: r.Dir}
	base, err := baseTree(ctx, &g, r, dir)
	if err != nil {
		return packResult{err: fmt.Errorf("base tree of %s: %w", r.Dir, err)}
	}
	var revs []string
	if r.Commit != "" {
		revs = append(revs, r.Commit)
	}
	if base != emptyTrees[r.ObjectFormat] {
		revs = append(revs, base)
	}
	if len(revs) == 0 {
		return packResult{baseTree: base}
	}
	if err := useTempObjects(ctx, &g, dir); err != nil {
		return packResult{err: err}
	}
	// --window=0: no new delta search (the costly part). Objects are
	// reused as stored, loose or packed, deltas included: no recompression.
	out, err := g.outIn(ctx, strings.NewReader(strings.Join(revs, "\n")+"\n"),
		"pack-objects", "--revs", "--window=0", "-q", filepath.Join(dir, "pack"))
	if err != nil {
		return packResult{err: err}
	}
	hash := strings.TrimSpace(string(out))
	if hash == "" {
		return packResult{err: errors.New("git pack-objects named no pack")}
	}
	p := filepath.Join(dir, "pack-"+hash)
	return packResult{pack: p + ".pack", idx: p + ".idx", baseTree: base}
}

// baseTree is the tree the guest starts from: the commit's, plus the
// untracked files copied. Those are hashed through a temporary index
// into a temporary object directory, so the host repository is not
// written to.
func baseTree(ctx context.Context, g *git, r *Repo, dir string) (string, error) {
	var untracked []string
	for _, f := range r.Files {
		if f.Untracked {
			untracked = append(untracked, strings.TrimPrefix(f.Path, withSlash(r.Prefix)))
		}
	}
	if len(untracked) == 0 {
		if r.Commit == "" {
			return emptyTrees[r.ObjectFormat], nil
		}
		return g.line(ctx, "rev-parse", r.Commit+"^{tree}")
	}
	if err := useTempObjects(ctx, g, dir); err != nil {
		return "", err
	}
	g.env = append(g.env, "GIT_INDEX_FILE="+filepath.Join(dir, "index"))
	var err error
	if r.Commit != "" {
		_, err = g.out(ctx, "read-tree", r.Commit)
	} else {
		_, err = g.out(ctx, "read-tree", "--empty")
	}
	if err != nil {
		return "", err
	}
	if _, err := g.outIn(ctx, strings.NewReader(strings.Join(untracked, "\x00")+"\x00"),
		"update-index", "--add", "-z", "--stdin"); err != nil {
		return "", err
	}
	return g.line(ctx, "write-tree")
}

// useTempObjects points g at a temporary object directory under dir whose
// alternate is the repository's: what git writes (the untracked files'
// blobs, pack-objects' temporary pack) lands beside the pack's
// destination — on its filesystem, so git's final rename works when the
// repository is on another — and never in the host repository.
func useTempObjects(ctx context.Context, g *git, dir string) error {
	if g.env != nil {
		return nil // already done
	}
	objects, err := g.line(ctx, "rev-parse", "--path-format=absolute", "--git-path", "objects")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "objects", "pack"), 0o700); err != nil {
		return err
	}
	g.env = []string{"GIT_OBJECT_DIRECTORY=" + filepath.Join(dir, "objects"), "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + objects}
	return nil
}

// writeGitDir adds the guest repository's .git: the pack, HEAD and the
// branch, a minimal config (none of the host's: no remotes, credentials
// or hooks), the ignore rules and the import's base tree. The agent
// writes the index from the files' object ids.
func writeGitDir(ctx context.Context, w Sink, r *Repo, pack packResult) error {
	gd := withSlash(r.Prefix) + ".git"
	for _, d := range []string{"", "refs", "refs/heads", "refs/tags", "objects", "objects/pack", "objects/info", "info", "banger"} {
		if err := w.WriteHeader(&tar.Header{Name: path.Join(gd, d) + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return err
		}
	}
	head := r.Commit + "\n"
	if r.Branch != "" {
		head = "ref: refs/heads/" + r.Branch + "\n"
	}
	files := []struct{ name, body string }{
		{"HEAD", head},
		{"config", gitConfig(r.ObjectFormat)},
		{"info/exclude", excludes(ctx, git{dir: r.Dir})},
		{BaseTreeFile, pack.baseTree + "\n"},
	}
	if r.Commit != "" && r.Branch != "" {
		files = append(files, struct{ name, body string }{"refs/heads/" + r.Branch, r.Commit + "\n"})
	}
	if shallow := gitFile(ctx, git{dir: r.Dir}, "shallow"); shallow != "" {
		files = append(files, struct{ name, body string }{"shallow", shallow})
	}
	for _, f := range files {
		if err := writeBytes(w, path.Join(gd, f.name), []byte(f.body), 0o644); err != nil {
			return err
		}
	}
	for _, p := range []string{pack.pack, pack.idx} {
		if p == "" {
			continue
		}
		if err := writeHostFile(w, p, path.Join(gd, "objects/pack", filepath.Base(p)), false, 0o444); err != nil {
			return err
		}
	}
	return nil
}

func gitConfig(format string) string {
	version, ext := "0", ""
	if format != "" && format != "sha1" {
		version, ext = "1", "[extensions]\n\tobjectformat = "+format+"\n"
	}
	return "[core]\n\trepositoryformatversion = " + version +
		"\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n" + ext
}

// excludes are the host's ignore rules that live outside the repository
// (.git/info/exclude and the user's global excludes file), so that the
// guest ignores what the host does and exports do not pick up files the
// host would never have copied.
func excludes(ctx context.Context, g git) string {
	var b strings.Builder
	b.WriteString(gitFile(ctx, g, "info/exclude"))
	global, _ := g.line(ctx, "config", "--path", "--get", "core.excludesFile")
	if global == "" {
		if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
			global = filepath.Join(x, "git", "ignore")
		} else if home, err := os.UserHomeDir(); err == nil {
			global = filepath.Join(home, ".config", "git", "ignore")
		}
	}
	if data, err := os.ReadFile(global); err == nil && len(data) > 0 {
		b.WriteString("\n# from the host's " + filepath.Base(global) + "\n")
		b.Write(data)
		b.WriteString("\n")
	}
	return b.String()
}

// gitFile reads a file of the host repository's git directory.
func gitFile(ctx context.Context, g git, name string) string {
	p, err := g.line(ctx, "rev-parse", "--path-format=absolute", "--git-path", name)
	if err != nil {
		return ""
	}
	b, _ := os.ReadFile(p)
	return string(b)
}

func writeBytes(w Sink, name string, data []byte, mode int64) error {
	if err := w.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
