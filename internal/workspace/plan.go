// Package workspace moves git repositories between the host and a guest.
//
// Import: a repository's committed files (HEAD, or --from REF) — plus, on
// request, untracked files that are not ignored — are streamed into the
// guest as one tar archive over the agent channel, together with a fresh
// .git holding only the history of that commit (a pack built by
// git pack-objects: no host config, hooks, remotes, other branches or
// stashes go along). The agent writes the guest's git index from the
// object ids the archive carries, so `git status` in the guest starts
// clean without hashing anything.
//
// Export: a shell script run in the guest diffs the import's base tree
// against the guest's working tree through a throwaway index inside the
// git directory, so the guest's own index, refs and files are untouched.
//
// File sync: [[file_sync]] entries from config.toml become one archive
// copied at every VM start.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Options say what to import.
type Options struct {
	Repo             string // host path of (or inside) the working tree
	From             string // commit to check out in the guest; "" = HEAD
	Branch           string // branch to create at From; "" = HEAD's branch (or detached)
	IncludeUntracked bool   // also copy untracked files that are not ignored
	Submodules       bool   // copy submodules (else their presence is an error)
}

// Git modes of the entries a plan copies.
const (
	ModeFile      = 0o100644
	ModeExec      = 0o100755
	ModeSymlink   = 0o120000
	ModeSubmodule = 0o160000
)

// File is one path the import copies.
type File struct {
	Path      string // slash-separated, relative to the top repository
	Mode      uint32 // one of the Mode constants
	OID       string // object id of a committed entry; "" when untracked
	Size      int64
	Untracked bool
	Perm      uint32 // untracked files: the permission bits they keep
}

// GuestMode is the mode the file gets in the guest, written like a git
// mode: committed files are 644 or 755 as git checks them out, untracked
// ones keep their own permission bits.
func (f File) GuestMode() uint32 {
	if f.Untracked && f.Mode != ModeSymlink {
		return 0o100000 | f.Perm
	}
	return f.Mode
}

// Repo is the top repository or one of its submodules.
type Repo struct {
	Dir          string // host working tree
	Prefix       string // path below the top repository ("" for the top)
	Commit       string // "" on an unborn branch
	Branch       string // "" = detached HEAD in the guest
	ObjectFormat string // sha1 or sha256
	Files        []File // paths relative to the top repository
}

// Plan is what an import will copy, decided before anything is sent.
type Plan struct {
	Repos []Repo // the top repository first, then submodules
	// SkippedUntracked counts untracked, non-ignored files left out
	// because IncludeUntracked was not given.
	SkippedUntracked int
	// Uncommitted counts tracked files whose working copy differs from
	// the commit: the guest gets them as committed.
	Uncommitted int
}

// Top is the repository the import was asked for.
func (p *Plan) Top() *Repo { return &p.Repos[0] }

// Files lists every path of every repository, sorted.
func (p *Plan) Files() []File {
	var all []File
	for _, r := range p.Repos {
		all = append(all, r.Files...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	return all
}

// Bytes is the size of the files' contents.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, r := range p.Repos {
		for _, f := range r.Files {
			n += f.Size
		}
	}
	return n
}

// Errors users can act on.
var (
	ErrNotRepo = errors.New("not a git repository")
)

// Make decides what an import of o.Repo copies. It reads the repository
// and changes nothing in it.
func Make(ctx context.Context, o Options) (*Plan, error) {
	if o.From != "" && o.Branch == "" {
		return nil, errors.New("--from needs --branch: name the branch the guest checkout starts at " + o.From)
	}
	top, err := openRepo(ctx, o.Repo)
	if err != nil {
		return nil, err
	}
	p := &Plan{}
	if err := p.add(ctx, top, "", o, true); err != nil {
		return nil, err
	}
	return p, nil
}

// openRepo checks that dir is (inside) a non-bare working tree and
// returns its top level.
func openRepo(ctx context.Context, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("repository %s does not exist", dir)
	}
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("repository %s is not a directory", dir)
	}
	g := git{dir: abs}
	bare, err := g.line(ctx, "rev-parse", "--is-bare-repository")
	if err != nil {
		return "", fmt.Errorf("%s: %w (give the path of a git checkout)", dir, ErrNotRepo)
	}
	if bare == "true" {
		return "", fmt.Errorf("%s is a bare repository: give the path of a checkout (git clone %s)", dir, dir)
	}
	topLevel, err := g.line(ctx, "rev-parse", "--show-toplevel")
	if err != nil || topLevel == "" {
		return "", fmt.Errorf("%s: %w: it has no working tree", dir, ErrNotRepo)
	}
	return topLevel, nil
}

// add plans one repository (the top, or a submodule at prefix) and,
// with o.Submodules, its submodules.
func (p *Plan) add(ctx context.Context, dir, prefix string, o Options, isTop bool) error {
	g := git{dir: dir}
	r := Repo{Dir: dir, Prefix: prefix}
	var err error
	if r.ObjectFormat, err = g.line(ctx, "rev-parse", "--show-object-format"); err != nil {
		return err
	}
	if r.Commit, err = resolveCommit(ctx, g, o.From, isTop); err != nil {
		return err
	}
	r.Branch = o.Branch
	if r.Branch != "" {
		if _, err := g.out(ctx, "check-ref-format", "--branch", r.Branch); err != nil {
			return fmt.Errorf("--branch %q is not a valid branch name", r.Branch)
		}
	} else if isTop {
		r.Branch, _ = g.line(ctx, "symbolic-ref", "--quiet", "--short", "HEAD")
	}
	tree, subs, err := committedFiles(ctx, g, r.Commit, prefix)
	if err != nil {
		return err
	}
	if len(subs) > 0 && !o.Submodules {
		return submodulesError(subs)
	}
	r.Files = append(tree, subs...)
	if err := p.addWorkingTree(ctx, g, &r, o, isTop); err != nil {
		return err
	}
	p.Repos = append(p.Repos, r)
	for _, s := range subs {
		sub := Options{From: s.OID, IncludeUntracked: o.IncludeUntracked, Submodules: true}
		if err := p.addSubmodule(ctx, dir, prefix, s, sub); err != nil {
			return err
		}
	}
	return nil
}

// submodulesError names the submodules a plain import refuses: copying
// a repository without them would give the guest a broken checkout.
func submodulesError(subs []File) error {
	var names []string
	for _, s := range subs {
		names = append(names, s.Path)
	}
	return fmt.Errorf("the repository has submodules (%s): pass --submodules to copy them as well", strings.Join(names, ", "))
}

// resolveCommit turns --from (or HEAD) into a commit id; "" means an
// unborn branch (a repository without commits).
func resolveCommit(ctx context.Context, g git, from string, isTop bool) (string, error) {
	ref := from
	if ref == "" {
		ref = "HEAD"
	}
	c, err := g.line(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err == nil {
		return c, nil
	}
	if from == "" && isTop {
		if _, serr := g.line(ctx, "symbolic-ref", "--quiet", "HEAD"); serr == nil {
			return "", nil // unborn branch
		}
	}
	if from != "" {
		return "", fmt.Errorf("--from %q: no such commit in %s", from, g.dir)
	}
	return "", fmt.Errorf("%s: cannot resolve HEAD: %w", g.dir, err)
}

// addSubmodule plans the checkout of submodule s, which must be present
// on the host with the commit the superproject records.
func (p *Plan) addSubmodule(ctx context.Context, superDir, superPrefix string, s File, o Options) error {
	dir := filepath.Join(superDir, filepath.FromSlash(strings.TrimPrefix(s.Path, withSlash(superPrefix))))
	top, err := openRepo(ctx, dir)
	if err != nil || filepath.Clean(top) != filepath.Clean(dir) {
		return fmt.Errorf("submodule %s is not checked out on the host: run `git submodule update --init --recursive`", s.Path)
	}
	if _, err := (git{dir: dir}).line(ctx, "cat-file", "-e", s.OID+"^{commit}"); err != nil {
		return fmt.Errorf("submodule %s does not have commit %s: run `git submodule update --init --recursive`", s.Path, s.OID)
	}
	return p.add(ctx, dir, s.Path, o, false)
}
