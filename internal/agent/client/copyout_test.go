package client

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// countingReader serves n bytes of 'x' (no newline) and counts what
// was read.
type countingReader struct{ left, read int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), c.left)
	for i := range p[:n] {
		p[i] = 'x'
	}
	c.left -= n
	c.read += n
	return int(n), nil
}

// A guest that follows its archive with an endless line instead of a
// trailer is cut off after about a frame, not read into memory whole.
func TestReadArchiveBoundsTheTrailer(t *testing.T) {
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	junk := &countingReader{left: 16 << 20}
	_, err := ReadArchive(io.MultiReader(&archive, junk), func(*tar.Header, io.Reader) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "without the agent's trailer") {
		t.Fatalf("err %v, want a missing trailer", err)
	}
	if junk.read > proto.MaxFrame+512<<10 {
		t.Fatalf("read %d bytes of a trailer line, want at most about %d", junk.read, proto.MaxFrame)
	}
}
