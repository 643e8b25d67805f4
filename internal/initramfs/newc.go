package initramfs

import (
	"errors"
	"fmt"
	"io"
)

// A tiny newc ("070701") writer. github.com/cavaliergopher/cpio, used for
// modules.cpio, cannot write device numbers (rdevmajor/rdevminor are always
// zero), and /dev/console needs them.

var newcMagic = []byte("070701")

var errShort = errors.New("short read of /init")

const (
	modeType = 0o170000
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeChr  = 0o020000
)

type newcWriter struct {
	w     io.Writer
	ino   uint32
	err   error
	total int64
}

func (n *newcWriter) write(b []byte) {
	if n.err != nil {
		return
	}
	var c int
	c, n.err = n.w.Write(b)
	n.total += int64(c)
}

// pad writes zeros up to the next 4-byte boundary, as newc requires after
// each header+name and after each file body.
func (n *newcWriter) pad() {
	if r := n.total % 4; r != 0 {
		n.write(make([]byte, 4-r))
	}
}

// entry writes one header and, for regular files, size bytes from body.
func (n *newcWriter) entry(name string, mode, rdevMajor, rdevMinor uint32, body io.Reader, size int64) {
	if size > 0xFFFFFFFF {
		n.err = fmt.Errorf("%s: too large for newc (%d bytes)", name, size)
		return
	}
	n.ino++
	nlink := uint32(1)
	if mode&modeType == modeDir {
		nlink = 2
	}
	// Fields: ino mode uid gid nlink mtime filesize devmajor devminor
	// rdevmajor rdevminor namesize check. Everything is root-owned and
	// mtime 0, so equal inputs give byte-identical archives.
	hdr := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		newcMagic, n.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	n.write([]byte(hdr))
	n.write([]byte(name + "\x00"))
	n.pad()
	if body != nil && size > 0 && n.err == nil {
		var c int64
		c, n.err = io.CopyN(n.w, body, size)
		n.total += c
		if n.err == io.EOF {
			n.err = errShort
		}
	}
	n.pad()
}

// trailer ends the archive; the kernel stops unpacking this archive here
// and looks for the next one.
func (n *newcWriter) trailer() {
	n.entry("TRAILER!!!", 0, 0, 0, nil, 0)
}
