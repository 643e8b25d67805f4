package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Ext4 is a read-only view of an ext4 filesystem image, in pure Go.
//
// banger reads its own images (tar2ext4 output) and VM overlay disks
// (mkfs.ext4 output) with it: promoting a VM merges the two into a tar
// stream, and registering an image looks for /sbin/init and sshd. Reading
// the filesystem in-process means nothing is mounted, no root is needed,
// and nothing from a guest is unpacked onto the host. (debugfs could dump
// files, but only one process per file or by scraping its listing output,
// and `rdump` would unpack onto the host.)
//
// It supports what those two writers produce: extent-mapped files and
// directories (also htree directories, read linearly), fast and slow
// symlinks, inline data, in-inode and block xattrs, 64-bit group
// descriptors. Indirect block maps (ext2/ext3) are refused.
type Ext4 struct {
	r          io.ReaderAt
	blockSize  int64
	inodeSize  int64
	ipg        int64 // inodes per group
	descSize   int64
	gdtOffset  int64
	groups     int64
	inodeCount uint32
	// blocks is the filesystem's size in blocks: what the superblock
	// claims, but never more than the image file holds. Every count the
	// reader takes from the disk (extents, directory and symlink sizes,
	// block numbers) is bounded by it, so a small hostile disk cannot make
	// the reader allocate or loop more than the disk could describe.
	blocks int64
}

// Ext4Inode is one inode's metadata.
type Ext4Inode struct {
	Num    uint32
	Mode   uint16 // type and permission bits, as in stat(2)
	UID    uint32
	GID    uint32
	Size   int64
	Links  uint16
	Mtime  time.Time
	Atime  time.Time
	Ctime  time.Time
	Major  uint32 // device numbers of character/block devices
	Minor  uint32
	flags  uint32
	block  [60]byte
	xblock int64  // external xattr block, 0 if none
	ibody  []byte // in-inode xattr area (after i_extra_isize), may be nil
}

// Inode type bits (stat(2) S_IF*).
const (
	modeTypeMask = 0o170000
	modeDir      = 0o040000
	modeReg      = 0o100000
	modeSymlink  = 0o120000
	modeChar     = 0o020000
	modeBlock    = 0o060000
	modeFIFO     = 0o010000
	modeSocket   = 0o140000
)

const (
	ext4RootInode    = 2
	flagExtents      = 0x80000
	flagInlineData   = 0x10000000
	extentMagic      = 0xF30A
	xattrMagic       = 0xEA020000
	maxExtentDepth   = 5
	sbInodesCountOff = 0x00
	sbRevLevelOff    = 0x4C
	sbInodeSizeOff   = 0x58
	// s_blocks_count_hi, with the 64bit feature.
	sbBlocksCountHiOffset = 0x150
)

// IsDir reports whether the inode is a directory.
func (n *Ext4Inode) IsDir() bool { return n.Mode&modeTypeMask == modeDir }

// OpenExt4 reads the superblock and group descriptors of an ext4 image.
// The disk may be hostile (a VM's overlay is written by its guest): every
// field is checked before it is used, so a corrupt disk is an error.
func OpenExt4(r io.ReaderAt) (*Ext4, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, superblockOffset); err != nil {
		return nil, fmt.Errorf("read ext4 superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[sbMagicOffset:]) != ext4Magic {
		return nil, errors.New("not an ext2/3/4 filesystem")
	}
	e := &Ext4{r: r, inodeCount: le.Uint32(sb[sbInodesCountOff:])}
	logBS := le.Uint32(sb[sbLogBlockSizeOffset:])
	if logBS > 6 {
		return nil, fmt.Errorf("implausible block size 2^%d KiB", logBS)
	}
	e.blockSize = 1024 << logBS
	e.inodeSize = 128
	if le.Uint32(sb[sbRevLevelOff:]) >= 1 {
		e.inodeSize = int64(le.Uint16(sb[sbInodeSizeOff:]))
	}
	e.ipg = int64(le.Uint32(sb[sbInodesPerGroupOffset:]))
	e.descSize = 32
	incompat := le.Uint32(sb[sbFeatureIncompatOff:])
	e.blocks = int64(le.Uint32(sb[sbBlocksCountOffset:]))
	if incompat&incompat64Bit != 0 {
		e.descSize = int64(le.Uint16(sb[sbDescSizeOffset:]))
		e.blocks |= int64(le.Uint32(sb[sbBlocksCountHiOffset:])) << 32
	}
	// As the kernel requires (ext4_fill_super): inode and descriptor
	// sizes are powers of two that fit a block, so every offset the
	// reader computes inside them stays inside them.
	if e.inodeSize < 128 || e.inodeSize > e.blockSize || !pow2(e.inodeSize) {
		return nil, fmt.Errorf("corrupt ext4 superblock: inode size %d", e.inodeSize)
	}
	if e.descSize < 32 || e.descSize > 1024 || !pow2(e.descSize) {
		return nil, fmt.Errorf("corrupt ext4 superblock: group descriptor size %d", e.descSize)
	}
	if e.ipg == 0 || e.ipg > 8*e.blockSize {
		return nil, fmt.Errorf("corrupt ext4 superblock: %d inodes per group", e.ipg)
	}
	if n := readerSize(r); n > 0 {
		e.blocks = min(e.blocks, n/e.blockSize)
	}
	if e.blocks <= 0 {
		return nil, errors.New("corrupt ext4 superblock: no blocks")
	}
	e.groups = (int64(e.inodeCount) + e.ipg - 1) / e.ipg
	first := int64(le.Uint32(sb[sbFirstDataBlockOffset:]))
	e.gdtOffset = (first + 1) * e.blockSize
	return e, nil
}

func pow2(n int64) bool { return n > 0 && n&(n-1) == 0 }

// readerSize is the size of what r reads, or 0 when it cannot tell.
func readerSize(r io.ReaderAt) int64 {
	switch v := r.(type) {
	case interface{ Size() int64 }:
		return v.Size()
	case interface{ Stat() (os.FileInfo, error) }:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			return st.Size()
		}
	}
	return 0
}

// maxBytes is the size of the filesystem in bytes: no directory or
// symlink can be larger, and no extent can reach past it.
func (e *Ext4) maxBytes() int64 { return e.blocks * e.blockSize }

// Inode reads inode number n.
func (e *Ext4) Inode(n uint32) (*Ext4Inode, error) {
	if n == 0 || n > e.inodeCount {
		return nil, fmt.Errorf("inode %d out of range", n)
	}
	le := binary.LittleEndian
	g := int64(n-1) / e.ipg
	desc := make([]byte, e.descSize)
	if _, err := e.r.ReadAt(desc, e.gdtOffset+g*e.descSize); err != nil {
		return nil, fmt.Errorf("read group descriptor %d: %w", g, err)
	}
	table := int64(le.Uint32(desc[8:]))
	if e.descSize >= 64 {
		table |= int64(le.Uint32(desc[0x28:])) << 32
	}
	if table <= 0 || table >= e.blocks {
		return nil, fmt.Errorf("inode %d: group %d's inode table at block %d is outside the filesystem", n, g, table)
	}
	raw := make([]byte, e.inodeSize)
	if _, err := e.r.ReadAt(raw, table*e.blockSize+(int64(n-1)%e.ipg)*e.inodeSize); err != nil {
		return nil, fmt.Errorf("read inode %d: %w", n, err)
	}
	in := &Ext4Inode{
		Num:   n,
		Mode:  le.Uint16(raw[0:]),
		UID:   uint32(le.Uint16(raw[2:])) | uint32(le.Uint16(raw[0x78:]))<<16,
		GID:   uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[0x7A:]))<<16,
		Size:  int64(le.Uint32(raw[4:])) | int64(le.Uint32(raw[0x6C:]))<<32,
		Links: le.Uint16(raw[0x1A:]),
		flags: le.Uint32(raw[0x20:]),
	}
	copy(in.block[:], raw[0x28:0x28+60])
	in.xblock = int64(le.Uint32(raw[0x68:])) | int64(le.Uint16(raw[0x76:]))<<32
	if in.xblock < 0 || in.xblock >= e.blocks {
		return nil, fmt.Errorf("inode %d: xattr block %d is outside the filesystem", n, in.xblock)
	}
	if err := e.checkSize(in); err != nil {
		return nil, err
	}
	extra := int64(0)
	if e.inodeSize > 128 {
		// i_extra_isize: the kernel refuses one that overruns the inode.
		extra = int64(le.Uint16(raw[0x80:]))
		if 128+extra > e.inodeSize || extra&3 != 0 {
			return nil, fmt.Errorf("inode %d: corrupt i_extra_isize %d (inodes are %d bytes)", n, extra, e.inodeSize)
		}
	}
	ts := func(off int, extraOff int64) time.Time {
		sec := int64(int32(le.Uint32(raw[off:])))
		if extraOff > 0 && 0x80+extra >= extraOff+4 {
			// The low two bits of *_extra extend the epoch past 2038.
			sec += int64(le.Uint32(raw[extraOff:])&3) << 32
		}
		return time.Unix(sec, 0)
	}
	in.Atime, in.Ctime, in.Mtime = ts(0x08, 0x8C), ts(0x0C, 0x84), ts(0x10, 0x88)
	if body := 0x80 + extra; extra > 0 && body+4 <= e.inodeSize && le.Uint32(raw[body:]) == xattrMagic {
		in.ibody = raw[body+4:]
	}
	if t := in.Mode & modeTypeMask; t == modeChar || t == modeBlock {
		if old := le.Uint32(in.block[0:]); old != 0 {
			in.Major, in.Minor = (old>>8)&0xff, old&0xff
		} else {
			nw := le.Uint32(in.block[4:])
			in.Major, in.Minor = (nw&0xfff00)>>8, (nw&0xff)|((nw>>12)&0xfff00)
		}
	}
	return in, nil
}

// checkSize refuses sizes no disk of this size could hold: negative ones
// (the high bit of i_size_high), and directories or symlinks larger than
// the filesystem or than PATH_MAX. A regular file may be sparse, so only
// the flattener's byte budget bounds it.
func (e *Ext4) checkSize(in *Ext4Inode) error {
	switch t := in.Mode & modeTypeMask; {
	case in.Size < 0:
		return fmt.Errorf("inode %d: negative size %d", in.Num, in.Size)
	case t == modeDir && in.Size > e.maxBytes():
		return fmt.Errorf("inode %d: directory of %d bytes on a filesystem of %d", in.Num, in.Size, e.maxBytes())
	case t == modeSymlink && in.Size > maxPathLen:
		return fmt.Errorf("inode %d: symlink target of %d bytes (PATH_MAX is %d)", in.Num, in.Size, maxPathLen)
	}
	return nil
}

// Open returns a reader of a regular file's (or directory's, or slow
// symlink's) contents. Holes and unwritten extents read as zeros.
func (e *Ext4) Open(in *Ext4Inode) (io.Reader, error) {
	switch {
	case in.flags&flagInlineData != 0:
		b, err := e.inlineData(in)
		return bytes.NewReader(b), err
	case in.flags&flagExtents != 0:
		exts, err := e.extents(in)
		if err != nil {
			return nil, fmt.Errorf("inode %d: %w", in.Num, err)
		}
		return &extentReader{e: e, exts: exts, size: in.Size}, nil
	case in.Size == 0:
		return bytes.NewReader(nil), nil
	}
	return nil, fmt.Errorf("inode %d uses indirect block maps (ext2/ext3), which banger does not read", in.Num)
}

// Readlink returns a symlink's target.
func (e *Ext4) Readlink(in *Ext4Inode) (string, error) {
	if in.flags&(flagExtents|flagInlineData) == 0 && in.Size < 60 {
		return string(in.block[:in.Size]), nil // fast symlink
	}
	r, err := e.Open(in)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	return string(b), err
}

func (e *Ext4) inlineData(in *Ext4Inode) ([]byte, error) {
	n := min(in.Size, 60)
	b := append([]byte(nil), in.block[:n]...)
	if in.Size > 60 {
		xs, err := e.Xattrs(in)
		if err != nil {
			return nil, err
		}
		b = append(b, xs["system.data"]...)
	}
	if int64(len(b)) < in.Size {
		return nil, fmt.Errorf("inode %d: inline data shorter than its size", in.Num)
	}
	return b[:in.Size], nil
}
