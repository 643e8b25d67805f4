package agent

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"os"
	"path"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Git index modes (the index stores a normalised mode, not the file's).
const (
	gitModeFile    = 0o100644
	gitModeExec    = 0o100755
	gitModeSymlink = 0o120000
	gitModeGitlink = 0o160000
)

// indexEntry is one path of a repository copied in, with the stat data
// of the file as written and the object id the host sent.
type indexEntry struct {
	name string // relative to the extraction root
	path string // relative to the repository
	mode uint32
	oid  []byte
	st   unix.Stat_t
}

// writeIndexes writes <repo>/.git/index for every repository that had
// indexed entries. With real stat data in it, `git status` in the guest
// trusts the files as checked out instead of hashing every one of them.
func (x *extraction) writeIndexes() error {
	if err := x.settleRacy(); err != nil {
		return err
	}
	for repo, entries := range x.index {
		b, err := encodeIndex(entries)
		if err != nil {
			return fmt.Errorf("git index of %q: %w", repo, err)
		}
		if err := x.writeFile(path.Join(repo, ".git", "index"), b, 0o644); err != nil {
			return fmt.Errorf("git index of %q: %w", repo, err)
		}
	}
	return nil
}

// settleRacy backdates the files written in the last second or so. Git
// distrusts ("racily clean") an entry whose mtime is not older than the
// index file, and would hash it again, so those few are dated to before
// the copy started and their stat data taken again; the rest keep the
// time they were written at, as in a git checkout.
func (x *extraction) settleRacy() error {
	cutoff := time.Now().Unix() - 1
	old := x.start.Add(-2 * time.Second).UnixNano()
	ts := []unix.Timespec{unix.NsecToTimespec(old), unix.NsecToTimespec(old)}
	for _, entries := range x.index {
		for i := range entries {
			e := &entries[i]
			if e.st.Mtim.Sec < cutoff {
				continue
			}
			dfd, base, done, err := x.parent(e.name)
			if err != nil {
				return err
			}
			err = unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
			if err == nil {
				err = unix.Fstatat(dfd, base, &e.st, unix.AT_SYMLINK_NOFOLLOW)
			}
			done()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// writeFile writes a small file the agent makes itself (an index).
func (x *extraction) writeFile(name string, data []byte, mode uint32) error {
	dfd, base, done, err := x.parent(name)
	if err != nil {
		return err
	}
	defer done()
	fd, err := x.create(dfd, base, func() (int, error) {
		return unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	})
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// encodeIndex renders a version 2 index (see git's
// Documentation/gitformat-index.txt): entries sorted by path bytes, each
// padded with NULs to a multiple of 8, then a checksum of it all.
func encodeIndex(entries []indexEntry) ([]byte, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	var h hash.Hash
	var buf bytes.Buffer
	buf.WriteString("DIRC")
	be := func(v uint32) { binary.Write(&buf, binary.BigEndian, v) }
	be(2)
	be(uint32(len(entries)))
	for i, e := range entries {
		if i > 0 && entries[i-1].path == e.path {
			return nil, fmt.Errorf("path %q appears twice", e.path)
		}
		if h == nil {
			h = newIndexHash(len(e.oid))
		} else if len(e.oid) != h.Size() {
			return nil, fmt.Errorf("%q: object ids of mixed lengths", e.path)
		}
		start := buf.Len()
		st := &e.st
		for _, v := range []uint32{
			uint32(st.Ctim.Sec), uint32(st.Ctim.Nsec), uint32(st.Mtim.Sec), uint32(st.Mtim.Nsec),
			uint32(st.Dev), uint32(st.Ino), e.mode, st.Uid, st.Gid, uint32(st.Size),
		} {
			be(v)
		}
		buf.Write(e.oid)
		binary.Write(&buf, binary.BigEndian, uint16(min(len(e.path), 0xfff)))
		buf.WriteString(e.path)
		// At least one NUL ends the name; more pad to 8 bytes.
		pad := 8 - (buf.Len()-start)%8
		buf.Write(make([]byte, pad))
	}
	if h == nil {
		h = sha1.New()
	}
	h.Write(buf.Bytes())
	return h.Sum(buf.Bytes()), nil
}

func newIndexHash(oidLen int) hash.Hash {
	if oidLen == sha256.Size {
		return sha256.New()
	}
	return sha1.New()
}
