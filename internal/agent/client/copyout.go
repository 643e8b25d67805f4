package client

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// WriteArchive writes what fill puts in a tar stream to w, then the
// trailer that tells the agent the copy is complete: the copy_in stream
// as a relay (the daemon for vm cp) forwards it. fillErr is fill's own
// failure, ioErr a failure to send.
func WriteArchive(w io.Writer, fill func(*TarWriter) error) (fillErr, ioErr error) {
	return writeArchive(w, fill)
}

// ReadArchive reads a copy_out stream (the tar archive, then the agent's
// trailer) from r, calling each for every entry with the archive's
// reader positioned at the entry's contents. It fails when the stream
// ends early, when the agent reports an error, or when each does. The
// stream comes from the guest: each must treat entries as untrusted.
func ReadArchive(r io.Reader, each func(*tar.Header, io.Reader) error) (proto.CopyTrailer, error) {
	var tl proto.CopyTrailer
	br := bufio.NewReaderSize(r, 256<<10)
	tr := tar.NewReader(br)
	var n int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return tl, fmt.Errorf("read the guest's archive: %w", err)
		}
		n++
		if err := each(hdr, tr); err != nil {
			return tl, err
		}
	}
	// The trailer comes from the guest too: read at most a frame's worth
	// of it, not whatever the guest sends before a newline.
	if err := proto.ReadLine(br, &tl); err != nil {
		return tl, errors.New("the guest's archive ended without the agent's trailer: the copy was cut short")
	}
	if tl.Error != "" {
		return tl, &RequestError{Op: proto.OpCopyOut, Message: tl.Error}
	}
	if !tl.Done || tl.Entries != n {
		return tl, fmt.Errorf("received %d entries, the agent sent %d: the copy was cut short", n, tl.Entries)
	}
	return tl, nil
}
