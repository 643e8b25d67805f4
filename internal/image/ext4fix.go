package image

import (
	"encoding/binary"
	"fmt"
	"io"
)

// More ext4 superblock fields (offsets inside the superblock).
const (
	sbBlocksCountOffset    = 0x04
	sbFirstDataBlockOffset = 0x14
	sbLogBlockSizeOffset   = 0x18
	sbBlocksPerGroupOffset = 0x20
	sbInodesPerGroupOffset = 0x28
	sbFeatureIncompatOff   = 0x60
	sbFeatureROCompatOff   = 0x64
	sbDescSizeOffset       = 0xFE

	incompat64Bit        = 0x80
	roCompatGDTCsum      = 0x10
	roCompatMetadataCsum = 0x400
)

// fixInodeBitmapPadding sets the unused tail bits of every inode bitmap.
// tar2ext4 (hcsshim v0.15.0) leaves them clear; the kernel ignores them but
// e2fsck reports "Padding at end of inode bitmap is not set", so an image
// would never check clean. Filesystems with checksummed metadata are left
// alone (tar2ext4 writes none, and patching them would need new checksums).
func fixInodeBitmapPadding(f io.ReaderAt, w io.WriterAt) error {
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, superblockOffset); err != nil {
		return fmt.Errorf("read superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[sbMagicOffset:]) != ext4Magic {
		return fmt.Errorf("not an ext4 filesystem")
	}
	if le.Uint32(sb[sbFeatureROCompatOff:])&(roCompatGDTCsum|roCompatMetadataCsum) != 0 {
		return nil
	}
	blockSize := int64(1024) << le.Uint32(sb[sbLogBlockSizeOffset:])
	blocks := int64(le.Uint32(sb[sbBlocksCountOffset:]))
	first := int64(le.Uint32(sb[sbFirstDataBlockOffset:]))
	perGroup := int64(le.Uint32(sb[sbBlocksPerGroupOffset:]))
	ipg := int64(le.Uint32(sb[sbInodesPerGroupOffset:]))
	descSize := int64(32)
	if le.Uint32(sb[sbFeatureIncompatOff:])&incompat64Bit != 0 {
		descSize = int64(le.Uint16(sb[sbDescSizeOffset:]))
	}
	if perGroup == 0 || ipg == 0 || ipg > blockSize*8 || descSize < 32 {
		return fmt.Errorf("implausible superblock geometry")
	}
	groups := (blocks - first + perGroup - 1) / perGroup
	gdt := make([]byte, groups*descSize)
	if _, err := f.ReadAt(gdt, (first+1)*blockSize); err != nil {
		return fmt.Errorf("read group descriptors: %w", err)
	}
	bitmap := make([]byte, blockSize)
	for g := int64(0); g < groups; g++ {
		d := gdt[g*descSize:]
		blk := int64(le.Uint32(d[4:])) // bg_inode_bitmap_lo
		if descSize >= 64 {
			blk |= int64(le.Uint32(d[0x24:])) << 32
		}
		if _, err := f.ReadAt(bitmap, blk*blockSize); err != nil {
			return fmt.Errorf("read inode bitmap of group %d: %w", g, err)
		}
		changed := false
		for i := ipg; i < blockSize*8; i++ {
			if bitmap[i/8]&(1<<(i%8)) == 0 {
				bitmap[i/8] |= 1 << (i % 8)
				changed = true
			}
		}
		if changed {
			if _, err := w.WriteAt(bitmap, blk*blockSize); err != nil {
				return fmt.Errorf("write inode bitmap of group %d: %w", g, err)
			}
		}
	}
	return nil
}
