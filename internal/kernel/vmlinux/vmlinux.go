// Package vmlinux turns an x86 bzImage into the ELF vmlinux inside it, in
// pure Go, so that a distro kernel package (which ships only a bzImage) can
// boot under Firecracker, whose released versions load ELF kernels only.
//
// A bzImage is a real-mode setup blob followed by a small decompressor; the
// setup header (boot protocol >= 2.08) says where the compressed payload is.
// The kernel build appends the uncompressed size, as 4 little-endian bytes,
// to every compressed payload; it bounds the output here.
package vmlinux

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxKernelSize bounds the decompressed kernel; a real vmlinux is tens of
// MiB, so anything larger is a corrupt or hostile image.
const MaxKernelSize = 1 << 30

// ErrUnsupportedCompression is returned for payloads compressed with a
// format this package cannot decode (xz with the x86 BCJ filter, lzma, lzo).
var ErrUnsupportedCompression = errors.New("unsupported kernel compression")

var elfMagic = []byte("\x7fELF")

// Offsets in the setup header (Documentation/arch/x86/boot.rst).
const (
	offSetupSects   = 0x1f1
	offHeaderMagic  = 0x202
	offVersion      = 0x206
	offPayloadOff   = 0x248
	offPayloadLen   = 0x24c
	minProtoVersion = 0x208 // payload_offset/payload_length appeared in 2.08
)

// ExtractELF writes the ELF vmlinux contained in bzImage to w. An input
// that is already an ELF file is copied unchanged, so callers can pass
// whatever a kernel package ships.
func ExtractELF(bzImage io.ReaderAt, size int64, w io.Writer) error {
	head := make([]byte, 0x250)
	if _, err := bzImage.ReadAt(head[:4], 0); err != nil {
		return fmt.Errorf("read kernel: %w", err)
	}
	if bytes.Equal(head[:4], elfMagic) {
		_, err := io.Copy(w, io.NewSectionReader(bzImage, 0, size))
		return err
	}
	if size < int64(len(head)) {
		return errors.New("kernel image too small for a bzImage setup header")
	}
	if _, err := bzImage.ReadAt(head, 0); err != nil {
		return fmt.Errorf("read setup header: %w", err)
	}
	payload, err := locatePayload(head, size)
	if err != nil {
		return err
	}
	return decompress(io.NewSectionReader(bzImage, payload.off, payload.len), payload.len, w)
}

type span struct{ off, len int64 }

func locatePayload(head []byte, size int64) (span, error) {
	if string(head[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return span{}, errors.New("not a bzImage: no HdrS setup header")
	}
	if v := binary.LittleEndian.Uint16(head[offVersion:]); v < minProtoVersion {
		return span{}, fmt.Errorf("boot protocol %d.%02d predates payload fields (need 2.08)", v>>8, v&0xff)
	}
	setupSects := int64(head[offSetupSects])
	if setupSects == 0 {
		setupSects = 4 // boot protocol: 0 means 4
	}
	// payload_offset is relative to the protected-mode code, which starts
	// right after the setup sectors and the boot sector.
	start := (setupSects+1)*512 + int64(binary.LittleEndian.Uint32(head[offPayloadOff:]))
	n := int64(binary.LittleEndian.Uint32(head[offPayloadLen:]))
	if n < 8 || start+n > size {
		return span{}, fmt.Errorf("payload [%d, +%d) outside the %d-byte image", start, n, size)
	}
	return span{start, n}, nil
}

// decompress detects the payload's format by its magic and writes the
// result, which must be an ELF file of the size recorded in the trailer.
func decompress(payload *io.SectionReader, n int64, w io.Writer) error {
	var trailer [4]byte
	if _, err := payload.ReadAt(trailer[:], n-4); err != nil {
		return fmt.Errorf("read size trailer: %w", err)
	}
	want := int64(binary.LittleEndian.Uint32(trailer[:]))
	if want > MaxKernelSize {
		return fmt.Errorf("declared kernel size %d exceeds %d", want, MaxKernelSize)
	}
	// The trailer is not part of the compressed stream; decoders that look
	// for a following stream would choke on it.
	body := io.NewSectionReader(payload, 0, n-4)
	r, name, err := openDecoder(body)
	if err != nil {
		return err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	cw := &checkWriter{w: w}
	got, err := io.Copy(cw, io.LimitReader(r, want+1))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("decompress %s payload: truncated: %w", name, err)
	}
	if err != nil {
		return fmt.Errorf("decompress %s payload: %w", name, err)
	}
	if got != want {
		return fmt.Errorf("decompressed %s payload is %d bytes, header says %d", name, got, want)
	}
	return cw.finish()
}

func openDecoder(body *io.SectionReader) (io.Reader, string, error) {
	var m [6]byte
	if _, err := body.ReadAt(m[:], 0); err != nil {
		return nil, "", fmt.Errorf("read payload magic: %w", err)
	}
	switch {
	case m[0] == 0x1f && (m[1] == 0x8b || m[1] == 0x9e):
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, "gzip", fmt.Errorf("open gzip payload: %w", err)
		}
		zr.Multistream(false)
		return zr, "gzip", nil
	case bytes.Equal(m[:4], []byte{0x02, 0x21, 0x4c, 0x18}):
		// The kernel's `lz4 -l`: the legacy frame (blocks of at most
		// 8 MiB, no checksums), which lz4.Reader recognises by its magic.
		zr := lz4.NewReader(body)
		if err := zr.Apply(lz4.ConcurrencyOption(1)); err != nil {
			return nil, "lz4", fmt.Errorf("open lz4 payload: %w", err)
		}
		return zr, "lz4", nil
	case bytes.Equal(m[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxKernelSize))
		if err != nil {
			return nil, "zstd", fmt.Errorf("open zstd payload: %w", err)
		}
		return zr.IOReadCloser(), "zstd", nil
	case bytes.Equal(m[:3], []byte("BZh")):
		return bzip2.NewReader(body), "bzip2", nil
	case bytes.Equal(m[:6], []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		// Kernel xz payloads use the x86 BCJ filter, which no pure-Go
		// decoder available to this module implements.
		return nil, "xz", fmt.Errorf("%w: xz", ErrUnsupportedCompression)
	case m[0] == 0x5d && m[1] == 0:
		return nil, "lzma", fmt.Errorf("%w: lzma", ErrUnsupportedCompression)
	case bytes.Equal(m[:4], []byte{0x89, 'L', 'Z', 'O'}):
		return nil, "lzo", fmt.Errorf("%w: lzo", ErrUnsupportedCompression)
	}
	return nil, "", fmt.Errorf("%w: unknown payload magic % x", ErrUnsupportedCompression, m[:4])
}

// checkWriter fails the copy as soon as the output is known not to be an
// ELF file, so that a wrong guess never produces a large garbage file.
type checkWriter struct {
	w    io.Writer
	head []byte
}

func (c *checkWriter) Write(p []byte) (int, error) {
	if len(c.head) < len(elfMagic) {
		k := min(len(elfMagic)-len(c.head), len(p))
		c.head = append(c.head, p[:k]...)
		if !bytes.HasPrefix(elfMagic, c.head) {
			return 0, fmt.Errorf("decompressed kernel is not ELF (starts % x)", c.head)
		}
	}
	return c.w.Write(p)
}

func (c *checkWriter) finish() error {
	if !bytes.Equal(c.head, elfMagic) {
		return errors.New("decompressed kernel is too short to be ELF")
	}
	return nil
}
