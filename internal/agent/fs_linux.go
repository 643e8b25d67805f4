package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func init() {
	ops[proto.OpFS] = func(s *Server, st net.Conn, req proto.Request) {
		var p proto.FSParams
		if err := decodeParams(req, &p); err != nil {
			replyData(st, nil, err)
			return
		}
		replyData(st, fsOp("/", p), nil)
	}
}

// fsOp runs one filesystem action. root is where /etc/passwd and
// /etc/group are read (a test's directory; "/" in a guest).
func fsOp(root string, p proto.FSParams) proto.FSResult {
	var res proto.FSResult
	a := account{home: "/root"}
	if p.User != "" {
		var err error
		if a, err = lookupAccount(root, p.User); err != nil {
			res.Err = &proto.FSError{Code: proto.FSInvalid, Message: err.Error()}
			return res
		}
	}
	res.Home, res.UID, res.GID = a.home, a.uid, a.gid
	path := userPath(a, p.Path)
	if p.Action != proto.FSUser && path == "" {
		res.Err = &proto.FSError{Code: proto.FSInvalid, Message: "no path given"}
		return res
	}
	names := newOwnerNames(root)
	var err error
	switch p.Action {
	case proto.FSUser:
	case proto.FSStat:
		err = appendEntry(&res, names, path)
	case proto.FSMkdir:
		if _, serr := os.Lstat(path); serr == nil {
			err = fsErr(proto.FSExists, "path %s already exists", path)
			break
		}
		if err = mkdirAllOwned(path, a); err == nil {
			err = appendEntry(&res, names, path)
		}
	case proto.FSMove:
		dest := userPath(a, p.Dest)
		if dest == "" {
			err = fsErr(proto.FSInvalid, "no destination given")
			break
		}
		if _, serr := os.Lstat(path); serr != nil {
			err = serr
			break
		}
		if err = mkdirAllOwned(filepath.Dir(dest), a); err == nil {
			if err = os.Rename(path, dest); err == nil && p.Own {
				err = os.Lchown(dest, int(a.uid), int(a.gid))
			}
			if err == nil {
				err = appendEntry(&res, names, dest)
			}
		}
	case proto.FSList:
		err = listDir(&res, names, path, max(p.Depth, 1))
	case proto.FSRemove:
		if _, serr := os.Lstat(path); serr != nil {
			err = serr
			break
		}
		err = os.RemoveAll(path)
	default:
		err = fsErr(proto.FSInvalid, "unknown fs action %q", p.Action)
	}
	if err != nil {
		res.Entries = nil
		res.Err = toFSError(err)
	}
	return res
}

// userPath is p made absolute against the user's home, cleaned.
func userPath(a account, p string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(a.home, p)
	}
	return filepath.Clean(p)
}

// mkdirAllOwned creates dir and its missing parents, owned by a.
func mkdirAllOwned(dir string, a account) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fsErr(proto.FSInvalid, "%s is not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAllOwned(parent, a); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Lchown(dir, int(a.uid), int(a.gid))
}

func listDir(res *proto.FSResult, names *ownerNames, dir string, depth int) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fsErr(proto.FSInvalid, "path %s is not a directory", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := appendEntry(res, names, p); err != nil {
			continue // removed meanwhile
		}
		if depth > 1 && e.IsDir() {
			listDir(res, names, p, depth-1)
		}
	}
	return nil
}

func appendEntry(res *proto.FSResult, names *ownerNames, path string) error {
	e, err := entryInfo(names, path)
	if err == nil {
		res.Entries = append(res.Entries, e)
	}
	return err
}

func entryInfo(names *ownerNames, path string) (proto.FSEntry, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return proto.FSEntry{}, err
	}
	e := proto.FSEntry{
		Name: filepath.Base(path), Path: path, Size: st.Size(), Mode: uint32(st.Mode()),
		Permissions: st.Mode().String(), ModTime: st.ModTime().UTC(), Type: "other",
	}
	switch {
	case st.Mode().IsRegular():
		e.Type = "file"
	case st.IsDir():
		e.Type = "dir"
	case st.Mode()&fs.ModeSymlink != 0:
		e.Type = "symlink"
		e.Target, _ = os.Readlink(path)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		e.Owner, e.Group = names.user(sys.Uid), names.group(sys.Gid)
	}
	return e, nil
}

// ownerNames resolves uids and gids to names from the guest's files,
// read once per op.
type ownerNames struct {
	root           string
	users, groups  map[string]string
	loadedU, loadG bool
}

func newOwnerNames(root string) *ownerNames { return &ownerNames{root: root} }

func (o *ownerNames) user(uid uint32) string {
	if !o.loadedU {
		o.users, o.loadedU = idNames(filepath.Join(o.root, "etc/passwd"), 7), true
	}
	return nameOr(o.users, uid)
}

func (o *ownerNames) group(gid uint32) string {
	if !o.loadG {
		o.groups, o.loadG = idNames(filepath.Join(o.root, "etc/group"), 4), true
	}
	return nameOr(o.groups, gid)
}

func idNames(path string, fields int) map[string]string {
	m := map[string]string{}
	entries, _ := readColonFile(path, fields)
	for _, e := range entries {
		if _, dup := m[e[2]]; !dup {
			m[e[2]] = e[0]
		}
	}
	return m
}

func nameOr(m map[string]string, id uint32) string {
	s := strconv.FormatUint(uint64(id), 10)
	if n, ok := m[s]; ok {
		return n
	}
	return s
}

type fsError struct{ code, msg string }

func (e *fsError) Error() string { return e.msg }

func fsErr(code, format string, args ...any) error {
	return &fsError{code, fmt.Sprintf(format, args...)}
}

func toFSError(err error) *proto.FSError {
	var fe *fsError
	switch {
	case errors.As(err, &fe):
		return &proto.FSError{Code: fe.code, Message: fe.msg}
	case errors.Is(err, fs.ErrNotExist):
		return &proto.FSError{Code: proto.FSNotFound, Message: err.Error()}
	case errors.Is(err, fs.ErrExist):
		return &proto.FSError{Code: proto.FSExists, Message: err.Error()}
	case errors.Is(err, fs.ErrPermission):
		return &proto.FSError{Code: proto.FSDenied, Message: err.Error()}
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.EISDIR):
		return &proto.FSError{Code: proto.FSInvalid, Message: err.Error()}
	}
	return &proto.FSError{Code: proto.FSFailed, Message: err.Error()}
}
