package rpc

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Bodies: a call may carry a byte stream each way without leaving the
// JSON-lines protocol's shape (progress, then one result line).
//
//   - Request body (client → daemon): right after its request line the
//     client sends chunks, each a 4-byte big-endian length and that many
//     bytes; a zero length ends the body. The handler reads it with
//     Call.Body. The client sends it with Conn.SendBody while it waits.
//   - Response body (daemon → client): among its progress lines the
//     daemon may write chunk lines {"chunk":N} each followed by N raw
//     bytes (Call.Write); Conn.Wait hands them to its sink in order, and
//     the result line comes after the last one.
//
// Uploads (image register, kernel import, a workspace archive) and
// downloads (image export) use them, so that a client that is not on
// the daemon's filesystem — another mount namespace, another machine,
// an HTTP client behind another adapter — sends and receives files.

// maxChunk bounds one chunk in either direction.
const maxChunk = 1 << 20

// bodyReader reads the chunked request body.
type bodyReader struct {
	r    io.Reader
	left uint32 // bytes left in the current chunk
	done bool
	err  error
	end  func() // called once when the end marker has been read
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if b.left == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(b.r, hdr[:]); err != nil {
			b.err = fmt.Errorf("request body: %w", noEOF(err))
			return 0, b.err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 {
			b.done = true
			if b.end != nil {
				b.end()
			}
			return 0, io.EOF
		}
		if n > maxChunk {
			b.err = fmt.Errorf("request body: chunk of %d bytes (limit %d)", n, maxChunk)
			return 0, b.err
		}
		b.left = n
	}
	if uint32(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= uint32(n)
	if err != nil && (b.left > 0 || err != io.EOF) {
		b.err = fmt.Errorf("request body: %w", noEOF(err))
		return n, b.err
	}
	return n, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Body returns the request body the client sends after its request
// line. While the handler reads it the call's disconnect watch pauses (a
// body read that fails is how the handler learns the client went away);
// once the body has ended, the watch runs again. Call it once.
func (c *Call) Body() io.Reader {
	c.watch.stop()
	return &bodyReader{r: c.br, end: c.watch.start}
}

// Write sends p to the client as response-body chunks, between progress
// lines. Unlike Progress it blocks while the client is slow to read: the
// body must arrive whole. The handler must not Write after it returns.
func (c *Call) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxChunk)
		if err := c.writeLocked(message{Chunk: n}); err != nil {
			return written, err
		}
		m, err := c.conn.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// sendBody writes body as request-body chunks, then the end marker.
func sendBody(w io.Writer, body io.Reader) error {
	buf := make([]byte, 4+256<<10)
	for {
		n, err := body.Read(buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf[:4], uint32(n))
			if _, werr := w.Write(buf[:4+n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			_, werr := w.Write([]byte{0, 0, 0, 0})
			return werr
		}
		if err != nil {
			return err
		}
	}
}
