package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// intoTarget is where a `docker cp`-style copy_in (CopyInParams.Into)
// extracts: root is an existing directory, and entries named from (the
// archive's top-level name) are renamed to to.
type intoTarget struct {
	root     string
	from, to string
	display  string // the path the user named, for errors
}

// resolveInto decides where a vm cp lands, as docker cp does: into an
// existing directory, else as a new name in an existing parent. Nothing
// above the copy is created. Symlinks in Into are followed: it is the
// path the user named in the guest.
func resolveInto(p proto.CopyInParams) (intoTarget, error) {
	if !filepath.IsAbs(p.Into) {
		return intoTarget{}, fmt.Errorf("copy_in: target %q must be an absolute path", p.Into)
	}
	into := filepath.Clean(p.Into)
	t := intoTarget{display: p.Into, from: p.Base}
	if p.Base != "" {
		if err := checkName(p.Base); err != nil || strings.Contains(p.Base, "/") {
			return t, fmt.Errorf("copy_in: bad base name %q", p.Base)
		}
	}
	st, err := os.Stat(into)
	switch {
	case err == nil && st.IsDir():
		t.root, t.to = into, p.Base
		return t, nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return t, fmt.Errorf("%s: %w", p.Into, err)
	case p.Base == "":
		if err == nil {
			return t, fmt.Errorf("%s is not a directory in the guest (an archive is extracted into a directory)", p.Into)
		}
		return t, fmt.Errorf("directory %s does not exist in the guest", p.Into)
	case (strings.HasSuffix(p.Into, "/") || strings.HasSuffix(p.Into, "/.")) && err != nil:
		return t, fmt.Errorf("directory %s does not exist in the guest", p.Into)
	case into == "/":
		return t, errors.New("copy_in: cannot replace /")
	}
	parent := filepath.Dir(into)
	pst, perr := os.Stat(parent)
	if perr != nil || !pst.IsDir() {
		return t, fmt.Errorf("cannot copy to %s: its parent directory %s does not exist in the guest", p.Into, parent)
	}
	t.root, t.to = parent, filepath.Base(into)
	return t, nil
}

// mapName renames an entry from the archive's top-level name to the
// target's; entries outside the top-level name are refused.
func (t *intoTarget) mapName(name string) (string, error) {
	if t.from == "" {
		return name, nil
	}
	if name == t.from {
		return t.to, nil
	}
	if rest, ok := strings.CutPrefix(name, t.from+"/"); ok {
		return t.to + "/" + rest, nil
	}
	return "", fmt.Errorf("refusing entry %q: the archive was announced as %q", name, t.from)
}

// checkTop refuses to put a directory where a non-directory is: docker
// cp's "cannot copy a directory to a file".
func (t *intoTarget) checkTop(name string, isDir bool) error {
	if t.from == "" || name != t.to || !isDir {
		return nil
	}
	st, err := os.Lstat(filepath.Join(t.root, name))
	if err == nil && !st.IsDir() {
		return fmt.Errorf("cannot copy a directory onto %s: it is not a directory in the guest", filepath.Join(t.root, name))
	}
	return nil
}
