package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// extent maps file blocks [lblk, lblk+n) to disk blocks from pblk;
// unwritten extents read as zeros.
type extent struct {
	lblk, n   int64
	pblk      int64
	unwritten bool
}

// extents reads an inode's extent tree into a list of extents in file
// order. The tree comes from the disk, so it is checked as the kernel
// does and more: each tree block is read once (index entries that all
// point at one child would otherwise multiply at every level, a DAG of
// 5 levels giving ~10^13 extents), header depths decrease by one per
// level, extents are in file order without overlap, lie inside the
// filesystem and share no disk block. So the list is never longer than
// the filesystem has blocks, and reading it never reads one disk block
// twice.
func (e *Ext4) extents(in *Ext4Inode) ([]extent, error) {
	c := &extentCollector{e: e, seen: map[int64]bool{}}
	if err := c.node(in.block[:], -1, 0); err != nil {
		return nil, err
	}
	phys := make([]extent, len(c.out))
	copy(phys, c.out)
	sort.Slice(phys, func(i, j int) bool { return phys[i].pblk < phys[j].pblk })
	for i := 1; i < len(phys); i++ {
		if p := phys[i-1]; p.pblk+p.n > phys[i].pblk {
			return nil, fmt.Errorf("extents share disk block %d", phys[i].pblk)
		}
	}
	return c.out, nil
}

type extentCollector struct {
	e       *Ext4
	seen    map[int64]bool // tree blocks read
	out     []extent
	next    int64 // first file block the next extent may map
	covered int64 // blocks the extents map so far
}

// node reads one tree node; want is the depth its header must say (-1
// at the root, whose header sets the tree's depth).
func (c *extentCollector) node(node []byte, want, level int) error {
	le := binary.LittleEndian
	if len(node) < 12 || le.Uint16(node[0:]) != extentMagic {
		return errors.New("bad extent header")
	}
	entries, d := int(le.Uint16(node[2:])), int(le.Uint16(node[6:]))
	if d > maxExtentDepth || (want >= 0 && d != want) || level > maxExtentDepth || 12+entries*12 > len(node) {
		return errors.New("corrupt extent tree")
	}
	for i := 0; i < entries; i++ {
		ent := node[12+i*12:]
		if d == 0 {
			if err := c.leaf(ent); err != nil {
				return err
			}
			continue
		}
		child := int64(le.Uint32(ent[4:])) | int64(le.Uint16(ent[8:]))<<32
		if child <= 0 || child >= c.e.blocks {
			return fmt.Errorf("extent tree block %d is outside the filesystem", child)
		}
		if c.seen[child] {
			return fmt.Errorf("extent tree block %d is referenced twice (a loop or a shared subtree)", child)
		}
		c.seen[child] = true
		buf := make([]byte, c.e.blockSize)
		if _, err := c.e.r.ReadAt(buf, child*c.e.blockSize); err != nil {
			return fmt.Errorf("read extent block %d: %w", child, err)
		}
		if err := c.node(buf, d-1, level+1); err != nil {
			return err
		}
	}
	return nil
}

func (c *extentCollector) leaf(ent []byte) error {
	le := binary.LittleEndian
	n := int64(le.Uint16(ent[4:]))
	unwritten := n > 32768
	if unwritten {
		n -= 32768
	}
	x := extent{lblk: int64(le.Uint32(ent[0:])), n: n, pblk: int64(le.Uint32(ent[8:])) | int64(le.Uint16(ent[6:]))<<32, unwritten: unwritten}
	switch {
	case n == 0:
		return errors.New("empty extent")
	case x.lblk < c.next:
		return fmt.Errorf("extent for file block %d overlaps or is out of order", x.lblk)
	case x.pblk <= 0 || x.pblk+n > c.e.blocks:
		return fmt.Errorf("extent at disk block %d (+%d) is outside the filesystem", x.pblk, n)
	}
	c.covered += n
	if c.covered > c.e.blocks {
		return errors.New("extents map more blocks than the filesystem has")
	}
	c.next = x.lblk + n
	c.out = append(c.out, x)
	return nil
}

// extentReader reads a file through its extents in order.
type extentReader struct {
	e    *Ext4
	exts []extent
	size int64
	off  int64
}

func (r *extentReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if int64(len(p)) > r.size-r.off {
		p = p[:r.size-r.off]
	}
	bs := r.e.blockSize
	lblk := r.off / bs
	for len(r.exts) > 0 && r.exts[0].lblk+r.exts[0].n <= lblk {
		r.exts = r.exts[1:]
	}
	if len(r.exts) == 0 || r.exts[0].lblk > lblk || r.exts[0].unwritten {
		// A hole (or preallocated space): zeros up to the next extent.
		end := r.size
		if len(r.exts) > 0 {
			if x := r.exts[0]; x.unwritten && x.lblk <= lblk {
				end = min(end, (x.lblk+x.n)*bs)
			} else {
				end = min(end, x.lblk*bs)
			}
		}
		n := min(int64(len(p)), end-r.off)
		clear(p[:n])
		r.off += n
		return int(n), nil
	}
	x := r.exts[0]
	end := min(r.size, (x.lblk+x.n)*bs)
	n := min(int64(len(p)), end-r.off)
	disk := (x.pblk+lblk-x.lblk)*bs + r.off%bs
	m, err := r.e.r.ReadAt(p[:n], disk)
	r.off += int64(m)
	if err == io.EOF && int64(m) == n {
		err = nil
	}
	return m, err
}
