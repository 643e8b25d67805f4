package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Ext4Dirent is one directory entry.
type Ext4Dirent struct {
	Name  string
	Inode uint32
}

// maxDirEntries bounds one directory's listing. The kernel has no such
// limit, but a directory is listed whole before its entries are walked,
// and 4 Mi is also the flattener's cap on entries of a whole image.
const maxDirEntries = 4 << 20

// ReadDir lists a directory, without "." and "..". It reads the directory
// one block at a time (entries never span blocks), so a size the disk
// claims costs nothing until the blocks are there; the size itself is
// bounded by the filesystem's (see checkSize).
func (e *Ext4) ReadDir(in *Ext4Inode) ([]Ext4Dirent, error) {
	if !in.IsDir() {
		return nil, fmt.Errorf("inode %d is not a directory", in.Num)
	}
	r, err := e.Open(in)
	if err != nil {
		return nil, err
	}
	if in.flags&flagInlineData != 0 {
		// Inline directories start with the parent's inode number and
		// have no "." or ".." entries; they are at most 60 bytes plus
		// one xattr value, which inlineData has read already.
		data, err := io.ReadAll(r)
		if err != nil || len(data) < 4 {
			return nil, err
		}
		return parseDirents(data[4:], 0, nil)
	}
	var out []Ext4Dirent
	buf := make([]byte, e.blockSize)
	for off := int64(0); off < in.Size; off += e.blockSize {
		n, err := io.ReadFull(r, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("inode %d: read directory block at %d: %w", in.Num, off, err)
		}
		if out, err = parseDirents(buf[:n], off, out); err != nil {
			return nil, fmt.Errorf("inode %d: %w", in.Num, err)
		}
	}
	return out, nil
}

// parseDirents appends the entries of one directory block (at byte off of
// the directory) to out.
func parseDirents(data []byte, base int64, out []Ext4Dirent) ([]Ext4Dirent, error) {
	le := binary.LittleEndian
	for off := 0; off+8 <= len(data); {
		ino := le.Uint32(data[off:])
		rec := int(le.Uint16(data[off+4:]))
		nameLen := int(data[off+6])
		if rec < 8 || off+rec > len(data) || 8+nameLen > rec {
			return nil, fmt.Errorf("corrupt directory entry at offset %d", base+int64(off))
		}
		if ino != 0 {
			name := string(data[off+8 : off+8+nameLen])
			if name == "" || strings.ContainsAny(name, "/\x00") {
				return nil, fmt.Errorf("directory entry at offset %d has an invalid name %q", base+int64(off), name)
			}
			if name != "." && name != ".." {
				if len(out) >= maxDirEntries {
					return nil, fmt.Errorf("directory has more than %d entries: refused", maxDirEntries)
				}
				out = append(out, Ext4Dirent{Name: name, Inode: ino})
			}
		}
		off += rec
	}
	return out, nil
}

// xattrPrefixes map ext4's name indexes to namespace prefixes.
var xattrPrefixes = map[byte]string{
	1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default",
	4: "trusted.", 6: "security.", 7: "system.", 8: "system.richacl",
}

// Xattrs returns an inode's extended attributes (in-inode and block).
func (e *Ext4) Xattrs(in *Ext4Inode) (map[string][]byte, error) {
	out := map[string][]byte{}
	if in.ibody != nil {
		if err := parseXattrs(in.ibody, in.ibody, out); err != nil {
			return nil, fmt.Errorf("inode %d xattrs: %w", in.Num, err)
		}
	}
	if in.xblock != 0 {
		b := make([]byte, e.blockSize)
		if _, err := e.r.ReadAt(b, in.xblock*e.blockSize); err != nil {
			return nil, fmt.Errorf("inode %d xattr block: %w", in.Num, err)
		}
		if binary.LittleEndian.Uint32(b) != xattrMagic {
			return nil, fmt.Errorf("inode %d: bad xattr block", in.Num)
		}
		if err := parseXattrs(b[32:], b, out); err != nil {
			return nil, fmt.Errorf("inode %d xattrs: %w", in.Num, err)
		}
	}
	return out, nil
}

// parseXattrs reads entries from ents; value offsets are relative to base.
func parseXattrs(ents, base []byte, out map[string][]byte) error {
	le := binary.LittleEndian
	for off := 0; off+16 <= len(ents); {
		if le.Uint32(ents[off:]) == 0 {
			return nil
		}
		nameLen, idx := int(ents[off]), ents[off+1]
		voff, vsize := int(le.Uint16(ents[off+2:])), int(le.Uint32(ents[off+8:]))
		if off+16+nameLen > len(ents) || voff+vsize > len(base) {
			return errors.New("corrupt xattr entry")
		}
		if le.Uint32(ents[off+4:]) != 0 {
			return errors.New("xattr values in separate inodes are not supported")
		}
		name := xattrPrefixes[idx] + string(ents[off+16:off+16+nameLen])
		out[name] = append([]byte(nil), base[voff:voff+vsize]...)
		off += (16 + nameLen + 3) &^ 3
	}
	return nil
}

// Lookup finds the inode at an absolute path without following symlinks.
func (e *Ext4) Lookup(p string) (*Ext4Inode, error) {
	in, err := e.Inode(ext4RootInode)
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if part == "" {
			continue
		}
		ents, err := e.ReadDir(in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		var next uint32
		for _, d := range ents {
			if d.Name == part {
				next = d.Inode
				break
			}
		}
		if next == 0 {
			return nil, fmt.Errorf("%s: %w", p, errNoEntry)
		}
		if in, err = e.Inode(next); err != nil {
			return nil, err
		}
	}
	return in, nil
}

var errNoEntry = errors.New("no such file or directory")
