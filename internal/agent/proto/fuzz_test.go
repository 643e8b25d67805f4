package proto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

// Fuzz targets for the host side of the agent protocol: everything here
// reads bytes a guest wrote. Each checks what must hold: no panic, no byte
// consumed past what was returned, output never larger than input, and
// memory that follows the input's size rather than what it claims.

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func FuzzReadLine(f *testing.F) {
	f.Add([]byte(`{"ok":true,"info":{"version":"1"}}` + "\nrest"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		var resp Response
		var err error
		used := allocated(func() { err = ReadLine(r, &resp) })
		consumed := len(b) - r.Len()
		nl := bytes.IndexByte(b, '\n')
		switch {
		case nl >= 0 && nl <= MaxFrame && consumed != nl+1:
			t.Fatalf("consumed %d bytes, the line ends at %d", consumed, nl+1)
		case err == nil && nl < 0:
			t.Fatal("a line without its newline was accepted")
		}
		if limit := uint64(16*len(b) + 64<<10); used > limit {
			t.Fatalf("%d-byte input: ReadLine allocated %d bytes", len(b), used)
		}

		br := bufio.NewReaderSize(bytes.NewReader(b), 16)
		var rest string
		used = allocated(func() { rest, err = ScanForLine(br, ReadyPrefix) })
		if err == nil && !bytes.Contains(b, []byte(ReadyPrefix+rest)) {
			t.Fatalf("ScanForLine returned %q, which does not follow the prefix in the input", rest)
		}
		if limit := uint64(4*len(b) + 4*maxScanLine); used > limit {
			t.Fatalf("%d-byte input: ScanForLine allocated %d bytes", len(b), used)
		}
	})
}

type rw struct {
	io.Reader
	io.Writer
}

type counter struct{ n int }

func (c *counter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func FuzzReadFrame(f *testing.F) {
	f.Add(frames(Frame{FrameStdout, []byte("hi\n")}, Frame{FrameExit, []byte(`{"code":3}`)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		total := 0
		used := allocated(func() {
			for {
				typ, p, err := ReadFrame(r)
				if err != nil {
					if len(p) != 0 || typ != 0 {
						t.Fatalf("error %v with a frame", err)
					}
					return
				}
				if len(p) > MaxFrame {
					t.Fatalf("frame of %d bytes", len(p))
				}
				total += 5 + len(p)
			}
		})
		if consumed := len(b) - r.Len(); total > consumed {
			t.Fatalf("frames hold %d bytes of %d consumed", total, consumed)
		}
		if limit := uint64(4*len(b) + 2*frameChunk + 4096); used > limit {
			t.Fatalf("%d-byte input: ReadFrame allocated %d bytes", len(b), used)
		}

		// The exec pump on the same bytes: output never exceeds input, and
		// a clean return means an exit frame was read.
		var out, errOut counter
		st, err := PumpExec(rw{bytes.NewReader(b), io.Discard}, nil, &out, &errOut, nil)
		if out.n+errOut.n > len(b) {
			t.Fatalf("pump wrote %d bytes from %d", out.n+errOut.n, len(b))
		}
		if err == nil && !bytes.Contains(b, []byte{FrameExit}) {
			t.Fatalf("pump returned %+v without an exit frame", st)
		}
		if err != nil && errors.Is(err, io.EOF) {
			t.Fatalf("pump reported a bare EOF: %v", err)
		}
	})
}

// frames encodes a sequence of frames.
func frames(fs ...Frame) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		var hdr [5]byte
		hdr[0] = f.Type
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(f.Payload)))
		b.Write(hdr[:])
		b.Write(f.Payload)
	}
	return b.Bytes()
}

// A frame claiming the maximum size whose bytes never come allocates
// little: the guest cannot pin MaxFrame per stream with a header.
func TestReadFrameClaimCostsNothing(t *testing.T) {
	hdr := []byte{FrameStdout, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], MaxFrame)
	var err error
	used := allocated(func() { _, _, err = ReadFrame(bytes.NewReader(append(hdr, "short"...))) })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short frame: %v", err)
	}
	if used > 4*frameChunk {
		t.Errorf("a %d-byte claim with 5 bytes behind it allocated %d bytes", MaxFrame, used)
	}
}
