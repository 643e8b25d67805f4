package hostcopy

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds on what the guest may send: a longer name is refused rather
// than handed to the host's filesystem calls.
const (
	MaxName      = 4096 // bytes in an entry's name or a symlink's target
	MaxComponent = 255  // bytes in one element of a name
)

// Extractor writes a guest's tar stream under a destination chosen as
// docker cp does (see Target). It is not safe for concurrent use.
type Extractor struct {
	root     *os.Root
	dir      string // root's path (symlink mtimes, messages)
	from, to string // the archive's top-level name and what it becomes
	display  string // the destination the user named
	dirs     []dirAttr
	// Bytes counts file contents written; Progress (optional) is called
	// as they are.
	Bytes    int64
	Progress func(int64)
}

type dirAttr struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
}

// Target opens the extraction for a guest path whose last element is
// base, copied to the host path dst: into dst when it is an existing
// directory, else as dst itself, whose parent directory must exist (it is
// never created). A dst ending in / must be an existing directory.
func Target(dst, base string) (*Extractor, error) {
	if base == "" || strings.Contains(base, "/") || base == "." || base == ".." {
		return nil, fmt.Errorf("bad source name %q", base)
	}
	clean := filepath.Clean(dst)
	x := &Extractor{from: base, display: dst}
	st, err := os.Stat(clean)
	switch {
	case err == nil && st.IsDir():
		x.dir, x.to = clean, base
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, err
	case strings.HasSuffix(dst, "/") || strings.HasSuffix(dst, "/."):
		return nil, fmt.Errorf("directory %s does not exist", dst)
	default:
		parent := filepath.Dir(clean)
		if pst, err := os.Stat(parent); err != nil || !pst.IsDir() {
			return nil, fmt.Errorf("cannot copy to %s: its parent directory %s does not exist", dst, parent)
		}
		x.dir, x.to = parent, filepath.Base(clean)
	}
	if x.root, err = os.OpenRoot(x.dir); err != nil {
		return nil, err
	}
	return x, nil
}

// Close releases the destination.
func (x *Extractor) Close() error { return x.root.Close() }

// Entry writes one entry; r holds its contents.
func (x *Extractor) Entry(h *tar.Header, r io.Reader) error {
	name, err := x.name(h.Name)
	if err != nil {
		return err
	}
	if err := x.parents(name); err != nil {
		return err
	}
	mode := fs.FileMode(h.Mode) & fs.ModePerm // no setuid/setgid/sticky from the guest
	switch h.Typeflag {
	case tar.TypeDir:
		return x.mkdir(name, mode, h.ModTime)
	case tar.TypeReg, tar.TypeRegA:
		return x.file(name, mode, h.ModTime, h.Size, r)
	case tar.TypeSymlink:
		return x.symlink(name, h.Linkname, h.ModTime)
	case tar.TypeLink:
		return fmt.Errorf("refusing %q: hard links are not accepted from the guest", h.Name)
	default:
		return fmt.Errorf("refusing %q: entry type %q is not accepted (only files, directories and symlinks)", h.Name, h.Typeflag)
	}
}

// name checks an entry's name and maps the archive's top-level name to
// the destination's.
func (x *Extractor) name(raw string) (string, error) {
	if len(raw) > MaxName {
		return "", fmt.Errorf("refusing an entry whose name is %d bytes long (at most %d)", len(raw), MaxName)
	}
	name := strings.TrimSuffix(raw, "/")
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) || path.Clean(name) != name {
		return "", fmt.Errorf("refusing entry %q: not a clean relative path", raw)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." || c == "." {
			return "", fmt.Errorf("refusing entry %q: it would leave the destination", raw)
		}
		if len(c) > MaxComponent {
			return "", fmt.Errorf("refusing entry %q: an element is longer than %d bytes", raw[:64]+"…", MaxComponent)
		}
	}
	if name == x.from {
		return x.to, nil
	}
	if rest, ok := strings.CutPrefix(name, x.from+"/"); ok {
		return x.to + "/" + rest, nil
	}
	return "", fmt.Errorf("refusing entry %q: the guest announced %q", raw, x.from)
}

// parents makes sure every directory above name is a real directory
// (never a symlink, which the stream could have planted), creating
// missing ones.
func (x *Extractor) parents(name string) error {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		st, err := x.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := x.root.Mkdir(p, 0o700); err != nil {
				return err
			}
			x.dirs = append(x.dirs, dirAttr{name: p, mode: 0o755})
			continue
		}
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("refusing %q: %s is not a directory (a symlink or a file); nothing is written through it", name, filepath.Join(x.dir, p))
		}
	}
	return nil
}

func (x *Extractor) mkdir(name string, mode fs.FileMode, mtime time.Time) error {
	st, err := x.root.Lstat(name)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("cannot copy a directory onto %s: it is not a directory", filepath.Join(x.dir, name))
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		// Writable by us until the end; the real mode comes in Finish.
		if err := x.root.Mkdir(name, 0o700); err != nil {
			return err
		}
	default:
		return err
	}
	x.dirs = append(x.dirs, dirAttr{name: name, mode: mode, mtime: mtime})
	return nil
}

// clear removes a file or symlink at name (never following it); a
// directory there is an error.
func (x *Extractor) clear(name string) error {
	st, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("cannot copy onto %s: a directory is in the way", filepath.Join(x.dir, name))
	}
	return x.root.Remove(name)
}

func (x *Extractor) file(name string, mode fs.FileMode, mtime time.Time, size int64, r io.Reader) error {
	if err := x.clear(name); err != nil {
		return err
	}
	// O_EXCL: a symlink planted in between is not followed.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	var w io.Writer = f
	if x.Progress != nil {
		w = progressWriter{f, x.Progress}
	}
	n, err := io.Copy(w, r)
	x.Bytes += n
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(x.dir, name), err)
	}
	if n != size {
		return fmt.Errorf("write %s: got %d bytes of %d", filepath.Join(x.dir, name), n, size)
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if !mtime.IsZero() {
		tv := []unix.Timeval{unix.NsecToTimeval(mtime.UnixNano()), unix.NsecToTimeval(mtime.UnixNano())}
		if err := unix.Futimes(int(f.Fd()), tv); err != nil {
			return err
		}
	}
	return f.Close()
}

func (x *Extractor) symlink(name, target string, mtime time.Time) error {
	if len(target) > MaxName || target == "" || strings.ContainsRune(target, 0) {
		return fmt.Errorf("refusing symlink %q: bad target", name)
	}
	if err := x.clear(name); err != nil {
		return err
	}
	if err := x.root.Symlink(target, name); err != nil {
		return err
	}
	if mtime.IsZero() {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	// parents checked that no element of name is a symlink.
	return unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(x.dir, name), ts, unix.AT_SYMLINK_NOFOLLOW)
}

// Finish gives directories their modes and mtimes, deepest first (so a
// read-only directory could still be filled, and later entries do not
// change a directory's mtime after it was set).
func (x *Extractor) Finish() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := x.root.Chmod(d.name, d.mode); err != nil {
			return err
		}
		if !d.mtime.IsZero() {
			if err := x.root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
				return err
			}
		}
	}
	return nil
}
