package workspace

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// withSlash is prefix as a path prefix: "" or "dir/".
func withSlash(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}

// committedFiles lists the commit's files (git ls-tree) and, apart, its
// submodules. All paths get prefix.
func committedFiles(ctx context.Context, g git, commit, prefix string) (files, subs []File, err error) {
	if commit == "" {
		return nil, nil, nil
	}
	out, err := g.out(ctx, "ls-tree", "-r", "-z", "-l", "--full-tree", commit)
	if err != nil {
		return nil, nil, err
	}
	for _, rec := range splitZ(out) {
		meta, name, ok := strings.Cut(rec, "\t")
		fields := strings.Fields(meta)
		if !ok || len(fields) != 4 {
			return nil, nil, fmt.Errorf("git ls-tree: unexpected line %q", rec)
		}
		mode, err := strconv.ParseUint(fields[0], 8, 32)
		if err != nil {
			return nil, nil, fmt.Errorf("git ls-tree: bad mode in %q", rec)
		}
		f := File{Path: withSlash(prefix) + name, OID: fields[2]}
		switch mode {
		case ModeFile, 0o100664: // 100664: written by very old gits
			f.Mode = ModeFile
		case ModeExec, ModeSymlink:
			f.Mode = uint32(mode)
		case ModeSubmodule:
			f.Mode = ModeSubmodule
			subs = append(subs, f)
			continue
		default:
			return nil, nil, fmt.Errorf("%s: unsupported git mode %06o", f.Path, mode)
		}
		if f.Size, err = strconv.ParseInt(fields[3], 10, 64); err != nil {
			return nil, nil, fmt.Errorf("git ls-tree: bad size in %q", rec)
		}
		files = append(files, f)
	}
	return files, subs, nil
}

// addWorkingTree finds what the working tree holds beyond the commit:
// untracked files that are not ignored (copied only with
// IncludeUntracked) and, for the top repository at HEAD, tracked files
// with uncommitted changes (never copied; counted for a note).
func (p *Plan) addWorkingTree(ctx context.Context, g git, r *Repo, o Options, isTop bool) error {
	committed := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range r.Files {
		committed[f.Path] = true
		for d := path.Dir(f.Path); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	others, err := g.out(ctx, "ls-files", "-z", "--others", "--exclude-standard", "--full-name")
	if err != nil {
		return err
	}
	// Files added to the index but never committed are not in the
	// commit either: they count as untracked here.
	cached, err := g.out(ctx, "ls-files", "-z", "--cached", "--full-name")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, name := range append(splitZ(others), splitZ(cached)...) {
		full := withSlash(r.Prefix) + name
		if strings.HasSuffix(name, "/") || seen[full] || committed[full] || dirs[full] || underFile(full, committed) {
			continue // a nested repository, or in the way of a committed path
		}
		seen[full] = true
		f, ok := untrackedFile(filepath.Join(g.dir, filepath.FromSlash(name)), full)
		if !ok {
			continue
		}
		if o.IncludeUntracked {
			r.Files = append(r.Files, f)
		} else {
			p.SkippedUntracked++
		}
	}
	if isTop && o.From == "" && r.Commit != "" {
		out, err := g.out(ctx, "diff", "--name-only", "-z", "--no-renames", "--diff-filter=MDT", "--ignore-submodules=all", r.Commit, "--")
		if err != nil {
			return err
		}
		p.Uncommitted = len(splitZ(out))
	}
	return nil
}

// underFile reports whether a parent directory of name is a committed
// file (the working tree replaced a file by a directory).
func underFile(name string, committed map[string]bool) bool {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if committed[d] {
			return true
		}
	}
	return false
}

// untrackedFile describes a working-tree path; only regular files and
// symlinks are copied (a deleted file or a socket is not).
func untrackedFile(hostPath, name string) (File, bool) {
	st, err := os.Lstat(hostPath)
	if err != nil {
		return File{}, false
	}
	f := File{Path: name, Untracked: true, Size: st.Size(), Perm: uint32(st.Mode().Perm())}
	switch {
	case st.Mode().IsRegular() && st.Mode()&0o100 != 0:
		f.Mode = ModeExec
	case st.Mode().IsRegular():
		f.Mode = ModeFile
	case st.Mode()&os.ModeSymlink != 0:
		f.Mode = ModeSymlink
	default:
		return File{}, false
	}
	return f, true
}
