package agent

import (
	"archive/tar"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// extraction is one copy_in in progress. Every file is created with
// openat relative to a directory descriptor that was itself opened with
// O_NOFOLLOW from its parent's (dirCache), so neither a symlink in the
// stream nor one already in the target can redirect a write; names are
// checked to be local before any of that.
//
// Entries are written one after the other: writer goroutines on the
// guest's vCPUs were tried and made no measurable difference under
// emulation (the host's cores are already busy running those vCPUs).
type extraction struct {
	final   string      // the requested directory
	into    *intoTarget // vm cp: entries are renamed and placed as docker cp does
	staging string      // fresh copies: the hidden directory being filled
	fresh   bool        // the target must be new: nothing is replaced
	mode    os.FileMode // mode of the root directory
	start   time.Time
	umask   uint32 // the agent's: files whose mode it narrows get a chmod
	dirs    *dirCache

	dirModes []dirMode // applied at the end, so a read-only dir can still be filled
	index    map[string][]indexEntry
	entries  int64
	bytes    int64
	buf      []byte
}

type dirMode struct {
	rel   string
	mode  uint32
	mtime time.Time // zero: left as the copy made it
}

func (x *extraction) entry(hdr *tar.Header, r io.Reader) error {
	x.entries++
	name := strings.TrimSuffix(hdr.Name, "/")
	if name == "." && hdr.Typeflag == tar.TypeDir {
		return nil
	}
	if err := checkName(name); err != nil {
		return err
	}
	if x.into != nil {
		var err error
		if name, err = x.into.mapName(name); err != nil {
			return err
		}
		if err := x.into.checkTop(name, hdr.Typeflag == tar.TypeDir); err != nil {
			return err
		}
	}
	var err error
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = x.dir(name, hdr)
	case tar.TypeReg:
		err = x.file(name, hdr, r)
	case tar.TypeSymlink:
		err = x.symlink(name, hdr)
	default:
		return fmt.Errorf("%q: entry type %q is not supported (only files, directories and symlinks)", name, hdr.Typeflag)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	return nil
}

// checkName refuses names that are absolute, unclean or climb out of the
// target: the host builds them from git, so anything else is a bug or an
// attack and the whole copy stops.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name {
		return fmt.Errorf("refusing entry %q: not a clean relative path", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." || c == "." {
			return fmt.Errorf("refusing entry %q: it would leave the target directory", name)
		}
	}
	return nil
}

func (x *extraction) dir(name string, hdr *tar.Header) error {
	fd, err := x.dirs.get(name)
	if err != nil {
		return err
	}
	defer x.dirs.put(name)
	mode := uint32(hdr.Mode) & 0o777
	if mode == 0 {
		mode = 0o755
	}
	x.dirModes = append(x.dirModes, dirMode{name, mode, hdr.ModTime})
	if _, ok := hdr.PAXRecords[proto.PAXGitLink]; ok {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		return x.record(name, hdr, gitModeGitlink, &st)
	}
	return nil
}

func (x *extraction) file(name string, hdr *tar.Header, r io.Reader) error {
	dfd, base, done, err := x.parent(name)
	if err != nil {
		return err
	}
	defer done()
	perm := uint32(hdr.Mode) & 0o777
	fd, err := x.create(dfd, base, func() (int, error) {
		return unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	})
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if x.buf == nil {
		x.buf = make([]byte, 256<<10)
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, r, x.buf)
	x.bytes += n
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("got %d bytes of %d", n, hdr.Size)
	}
	// Only a mode the umask narrowed needs a chmod: one syscall less per
	// file is measurable under emulation.
	if perm&x.umask != 0 {
		if err := unix.Fchmod(fd, perm); err != nil {
			return err
		}
	}
	if _, inIndex := hdr.PAXRecords[proto.PAXGitOID]; !inIndex {
		return setMtime(fd, "", hdr.ModTime, unix.AT_EMPTY_PATH)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	mode := uint32(gitModeFile)
	if hdr.Mode&0o100 != 0 {
		mode = gitModeExec
	}
	return x.record(name, hdr, mode, &st)
}

// setMtime dates a file as its header says (nothing when it says
// nothing).
func setMtime(dfd int, base string, t time.Time, flags int) error {
	if t.IsZero() {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(dfd, base, ts, flags)
}

func (x *extraction) symlink(name string, hdr *tar.Header) error {
	dfd, base, done, err := x.parent(name)
	if err != nil {
		return err
	}
	defer done()
	if _, err := x.create(dfd, base, func() (int, error) {
		return -1, unix.Symlinkat(hdr.Linkname, dfd, base)
	}); err != nil {
		return err
	}
	if _, inIndex := hdr.PAXRecords[proto.PAXGitOID]; !inIndex {
		return setMtime(dfd, base, hdr.ModTime, unix.AT_SYMLINK_NOFOLLOW)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	return x.record(name, hdr, gitModeSymlink, &st)
}

// create runs mk; when the name is taken and the copy may replace
// things, a file or symlink there is removed first (never followed) and
// mk runs again. A directory is never replaced by a file.
func (x *extraction) create(dfd int, base string, mk func() (int, error)) (int, error) {
	fd, err := mk()
	if !errors.Is(err, unix.EEXIST) || x.fresh {
		return fd, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return -1, errors.New("a directory is in the way")
	}
	if err := unix.Unlinkat(dfd, base, 0); err != nil {
		return -1, err
	}
	return mk()
}

// parent returns the fd of name's directory (created as needed), name's
// last element, and the function that releases the fd.
func (x *extraction) parent(name string) (int, string, func(), error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	fd, err := x.dirs.get(dir)
	if err != nil {
		return -1, "", nil, err
	}
	return fd, base, func() { x.dirs.put(dir) }, nil
}

func (x *extraction) applyDirModes() error {
	for i := len(x.dirModes) - 1; i >= 0; i-- {
		d := x.dirModes[i]
		fd, err := x.dirs.get(d.rel)
		if err != nil {
			return err
		}
		err = unix.Fchmod(fd, d.mode)
		if err == nil && x.into != nil {
			// vm cp keeps directories' mtimes (set last: writing entries
			// into a directory changes its own).
			err = setMtime(fd, "", d.mtime, unix.AT_EMPTY_PATH)
		}
		x.dirs.put(d.rel)
		if err != nil {
			return fmt.Errorf("chmod %q: %w", d.rel, err)
		}
	}
	return nil
}

// record adds an indexed entry to its repository's index.
func (x *extraction) record(name string, hdr *tar.Header, mode uint32, st *unix.Stat_t) error {
	oid, err := hex.DecodeString(hdr.PAXRecords[proto.PAXGitOID])
	if err != nil || (len(oid) != 20 && len(oid) != 32) {
		return fmt.Errorf("bad git object id %q", hdr.PAXRecords[proto.PAXGitOID])
	}
	repo := strings.Trim(hdr.PAXRecords[proto.PAXGitRepo], "/")
	if repo == "." {
		repo = ""
	}
	rel := name
	if repo != "" {
		if err := checkName(repo); err != nil {
			return err
		}
		var ok bool
		if rel, ok = strings.CutPrefix(name, repo+"/"); !ok {
			return fmt.Errorf("entry is not inside its repository %q", repo)
		}
	}
	x.index[repo] = append(x.index[repo], indexEntry{name: name, path: rel, mode: mode, oid: oid, st: *st})
	return nil
}
