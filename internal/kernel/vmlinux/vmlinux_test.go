package vmlinux

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// fakeELF is a minimal x86_64 executable: an ELF header, one PT_LOAD and a
// compressible body, enough for debug/elf to accept it.
func fakeELF(bodyLen int) []byte {
	const ehsize, phsize = 64, 56
	b := make([]byte, ehsize+phsize+bodyLen)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // 64-bit, little-endian, version 1
	le := binary.LittleEndian
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(elf.EM_X86_64))
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], 0x1000000) // entry
	le.PutUint64(b[32:], ehsize)    // phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], 1)
	ph := b[ehsize:]
	le.PutUint32(ph[0:], uint32(elf.PT_LOAD))
	le.PutUint32(ph[4:], uint32(elf.PF_R|elf.PF_X))
	le.PutUint64(ph[8:], ehsize+phsize)
	le.PutUint64(ph[16:], 0x1000000)
	le.PutUint64(ph[24:], 0x1000000)
	le.PutUint64(ph[32:], uint64(bodyLen))
	le.PutUint64(ph[40:], uint64(bodyLen))
	body := b[ehsize+phsize:]
	for i := range body {
		body[i] = byte(i*i/7) ^ byte(i>>9) // some repetition, not all
	}
	return b
}

// fakeBzImage wraps a compressed payload the way arch/x86/boot does:
// boot sector + setup sectors, then the protected-mode part, in which the
// payload sits at payload_offset followed by the 4-byte uncompressed size.
func fakeBzImage(compressed []byte, rawLen int) []byte {
	const setupSects, payloadOff = 3, 0x1234
	pm := (setupSects + 1) * 512
	img := make([]byte, pm+payloadOff)
	img[offSetupSects] = setupSects
	copy(img[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint16(img[offVersion:], 0x20f)
	binary.LittleEndian.PutUint32(img[offPayloadOff:], payloadOff)
	binary.LittleEndian.PutUint32(img[offPayloadLen:], uint32(len(compressed)+4))
	img = append(img, compressed...)
	img = binary.LittleEndian.AppendUint32(img, uint32(rawLen))
	return append(img, make([]byte, 100)...) // decompressor tail padding
}

func gzipBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// lz4Legacy frames b the way `lz4 -l` does, in blocks of blockLen bytes,
// with a repeated magic in the middle as concatenated streams have.
func lz4Legacy(b []byte, blockLen int) []byte {
	out := binary.LittleEndian.AppendUint32(nil, 0x184c2102)
	for n := 0; len(b) > 0; n++ {
		k := min(blockLen, len(b))
		blk := lz4Block(b[:k])
		if n == 1 {
			out = binary.LittleEndian.AppendUint32(out, 0x184c2102)
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(len(blk)))
		out = append(out, blk...)
		b = b[k:]
	}
	return out
}

// lz4Block is a greedy LZ4 block encoder: valid output, poor ratio.
func lz4Block(src []byte) []byte {
	var out []byte
	seen := map[uint32]int{}
	anchor, i := 0, 0
	for i+12 <= len(src) {
		key := binary.LittleEndian.Uint32(src[i:])
		j, ok := seen[key]
		seen[key] = i
		if !ok || i-j > 65535 {
			i++
			continue
		}
		m := 4
		for i+m < len(src)-5 && src[j+m] == src[i+m] {
			m++
		}
		out = lz4Seq(out, src[anchor:i], i-j, m)
		i += m
		anchor = i
	}
	return lz4Seq(out, src[anchor:], 0, 0)
}

func lz4Seq(out, lit []byte, off, mlen int) []byte {
	tok := byte(min(len(lit), 15)) << 4
	if mlen > 0 {
		tok |= byte(min(mlen-4, 15))
	}
	out = append(out, tok)
	out = lz4ExtLen(out, len(lit))
	out = append(out, lit...)
	if mlen == 0 {
		return out
	}
	out = binary.LittleEndian.AppendUint16(out, uint16(off))
	return lz4ExtLen(out, mlen-4)
}

func lz4ExtLen(out []byte, n int) []byte {
	if n < 15 {
		return out
	}
	for n -= 15; n >= 255; n -= 255 {
		out = append(out, 255)
	}
	return append(out, byte(n))
}

func extract(img []byte) ([]byte, error) {
	var out bytes.Buffer
	err := ExtractELF(bytes.NewReader(img), int64(len(img)), &out)
	return out.Bytes(), err
}

func TestExtractELF(t *testing.T) {
	raw := fakeELF(300_000)
	cases := map[string][]byte{
		"gzip":       gzipBytes(t, raw),
		"lz4":        lz4Legacy(raw, 100_000),
		"lz4 1block": lz4Legacy(raw, len(raw)),
		"zstd":       zstdBytes(t, raw),
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := extract(fakeBzImage(payload, len(raw)))
			if err != nil {
				t.Fatalf("ExtractELF: %v", err)
			}
			if !bytes.Equal(got, raw) {
				t.Fatalf("output differs from the original ELF (%d vs %d bytes)", len(got), len(raw))
			}
			ef, err := elf.NewFile(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if ef.Machine != elf.EM_X86_64 || ef.Type != elf.ET_EXEC {
				t.Fatalf("got %v %v", ef.Machine, ef.Type)
			}
		})
	}
}

func TestExtractELFPassesELFThrough(t *testing.T) {
	raw := fakeELF(1000)
	got, err := extract(raw)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("ELF input not copied unchanged: err=%v", err)
	}
}

func TestExtractELFErrors(t *testing.T) {
	raw := fakeELF(5000)
	notELF := append([]byte("MZ\x00\x00"), raw[4:]...)
	badHdr := fakeBzImage(gzipBytes(t, raw), len(raw))
	copy(badHdr[offHeaderMagic:], "XXXX")
	cases := []struct {
		name, want string
		img        []byte
		is         error
	}{
		{"xz", "xz", fakeBzImage([]byte("\xfd7zXZ\x00rest-of-stream"), 100), ErrUnsupportedCompression},
		{"unknown", "unknown payload magic", fakeBzImage([]byte("garbagegarbage"), 100), ErrUnsupportedCompression},
		{"not elf", "not ELF", fakeBzImage(gzipBytes(t, notELF), len(notELF)), nil},
		{"size mismatch", "header says", fakeBzImage(gzipBytes(t, raw), len(raw)+1), nil},
		{"no HdrS", "HdrS", badHdr, nil},
		{"too small", "too small", []byte("abcdefgh"), nil},
		{"truncated lz4", "truncated", fakeBzImage(lz4Legacy(raw, len(raw))[:200], len(raw)), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := extract(c.img)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("got %v, want errors.Is %v", err, c.is)
			}
		})
	}
}

func TestPayloadOutsideImage(t *testing.T) {
	img := fakeBzImage(gzipBytes(t, fakeELF(100)), 220)
	binary.LittleEndian.PutUint32(img[offPayloadLen:], 1<<30)
	if _, err := extract(img); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("got %v", err)
	}
}

// FuzzDecodeLZ4Block checks that hostile blocks fail cleanly, never panic
// or exceed the limit. The seeds run as part of go test.

// textELF is fakeELF with a very compressible body (short overlapping
// matches, a change every 4 KiB), large enough for two 8 MiB lz4 blocks.
func textELF(bodyLen int) []byte {
	b := fakeELF(bodyLen)
	body := b[len(b)-bodyLen:]
	for i := range body {
		body[i] = "banger "[i%7]
		if i%4096 == 0 {
			body[i] = byte(i >> 12)
		}
	}
	return b
}

// The payload as the kernel build makes it: testdata/text-elf.lz4 is
// textELF(9 MiB) compressed by the lz4 tool (v1.9.4) with `lz4 -l -9`, as
// scripts/Makefile.lib does: two legacy blocks, the first a full 8 MiB.
func TestExtractELFFromLZ4Tool(t *testing.T) {
	payload, err := os.ReadFile("testdata/text-elf.lz4")
	if err != nil {
		t.Fatal(err)
	}
	raw := textELF(9 << 20)
	got, err := extract(fakeBzImage(payload, len(raw)))
	if err != nil {
		t.Fatalf("ExtractELF: %v", err)
	}
	if !bytes.Equal(got, raw) {
		t.Fatalf("output differs from the original (%d vs %d bytes)", len(got), len(raw))
	}
	// A block cut short is an error, never a short kernel.
	if _, err := extract(fakeBzImage(payload[:len(payload)-100], len(raw))); err == nil {
		t.Fatal("truncated lz4 payload extracted without error")
	}
}

// FuzzExtractLZ4 feeds hostile lz4 legacy payloads (and size trailers)
// through ExtractELF: it must fail cleanly or produce exactly the
// declared number of bytes, starting with the ELF magic; never panic.
// The seeds run as part of go test.
func FuzzExtractLZ4(f *testing.F) {
	small := fakeELF(2000)
	f.Add(lz4Legacy(small, len(small)), uint16(len(small)))
	f.Add(lz4Legacy(small, 700), uint16(len(small)))
	f.Add([]byte{0x02, 0x21, 0x4c, 0x18, 3, 0, 0, 0, 0xf0, 0xff, 0xff}, uint16(100))
	f.Add([]byte{0x02, 0x21, 0x4c, 0x18, 6, 0, 0, 0, 0x1f, 'a', 0x05, 0x00, 0xff, 0xff}, uint16(100))
	f.Add([]byte{0x02, 0x21, 0x4c, 0x18, 4, 0, 0, 0, 0x10, 'a', 0x00, 0x00}, uint16(1))
	f.Fuzz(func(t *testing.T, payload []byte, size uint16) {
		if len(payload) < 4 {
			return
		}
		copy(payload, []byte{0x02, 0x21, 0x4c, 0x18}) // always the lz4 path
		got, err := extract(fakeBzImage(payload, int(size)))
		if len(got) > int(size)+1 { // one byte past the size is how a longer stream is noticed
			t.Fatalf("wrote %d bytes, trailer says %d", len(got), size)
		}
		if err == nil && (len(got) != int(size) || !bytes.HasPrefix(got, elfMagic)) {
			t.Fatalf("accepted %d bytes starting % x (trailer %d)", len(got), got[:min(4, len(got))], size)
		}
	})
}
