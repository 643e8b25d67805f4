package vmlinux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The kernel compresses with `lz4 -l`, the legacy frame: a 4-byte magic,
// then blocks, each a 4-byte little-endian compressed length and an LZ4
// block that decodes, independently of the others, to at most 8 MiB. A
// repeated magic starts a concatenated stream. No checksums.
const (
	lz4LegacyMagic     = 0x184c2102
	lz4LegacyBlockSize = 8 << 20
)

var errLZ4Corrupt = errors.New("corrupt lz4 block")

type legacyLZ4Reader struct {
	r   io.Reader
	in  []byte
	out []byte // decoded, not yet returned
	buf []byte
}

func newLegacyLZ4Reader(r io.Reader) *legacyLZ4Reader {
	return &legacyLZ4Reader{r: r}
}

func (l *legacyLZ4Reader) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if err := l.nextBlock(); err != nil {
			return 0, err
		}
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}

func (l *legacyLZ4Reader) nextBlock() error {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(l.r, hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("lz4: truncated block header: %w", err)
			}
			return err // io.EOF: clean end of stream
		}
		if binary.LittleEndian.Uint32(hdr[:]) != lz4LegacyMagic {
			break
		}
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	// An incompressible block is stored with a little expansion.
	if n == 0 || n > lz4LegacyBlockSize+lz4LegacyBlockSize/255+16 {
		return fmt.Errorf("lz4: bad block length %d", n)
	}
	if cap(l.in) < int(n) {
		l.in = make([]byte, n)
	}
	l.in = l.in[:n]
	if _, err := io.ReadFull(l.r, l.in); err != nil {
		return fmt.Errorf("lz4: truncated block: %w", err)
	}
	if l.buf == nil {
		l.buf = make([]byte, 0, lz4LegacyBlockSize)
	}
	out, err := decodeLZ4Block(l.buf[:0], l.in, lz4LegacyBlockSize)
	if err != nil {
		return err
	}
	l.out = out
	return nil
}

// decodeLZ4Block appends the decoding of one LZ4 block to dst, never
// growing it past limit bytes.
func decodeLZ4Block(dst, src []byte, limit int) ([]byte, error) {
	i := 0
	for i < len(src) {
		token := src[i]
		i++
		lit, j, err := lz4Length(src, i, int(token>>4))
		if err != nil {
			return nil, err
		}
		i = j
		if lit > len(src)-i || len(dst)+lit > limit {
			return nil, errLZ4Corrupt
		}
		dst = append(dst, src[i:i+lit]...)
		i += lit
		if i == len(src) {
			return dst, nil // the last sequence carries literals only
		}
		if len(src)-i < 2 {
			return nil, errLZ4Corrupt
		}
		off := int(binary.LittleEndian.Uint16(src[i:]))
		i += 2
		mlen, j, err := lz4Length(src, i, int(token&15))
		if err != nil {
			return nil, err
		}
		i = j
		mlen += 4
		if off == 0 || off > len(dst) || len(dst)+mlen > limit {
			return nil, errLZ4Corrupt
		}
		start := len(dst) - off
		if off >= mlen {
			dst = append(dst, dst[start:start+mlen]...)
			continue
		}
		// An overlapping match repeats its own output: copy bytewise.
		for k := 0; k < mlen; k++ {
			dst = append(dst, dst[start+k])
		}
	}
	return nil, errLZ4Corrupt
}

// lz4Length reads a length whose 4-bit nibble value 15 means "more bytes
// follow, each added, until one is not 255".
func lz4Length(src []byte, i, n int) (int, int, error) {
	if n != 15 {
		return n, i, nil
	}
	for {
		if i >= len(src) {
			return 0, 0, errLZ4Corrupt
		}
		b := src[i]
		i++
		n += int(b)
		if n > lz4LegacyBlockSize {
			return 0, 0, errLZ4Corrupt
		}
		if b != 255 {
			return n, i, nil
		}
	}
}
