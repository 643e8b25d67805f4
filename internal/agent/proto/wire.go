package proto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Channel protocol.
//
// The guest channel is one byte stream (a virtio-serial port, or a vsock
// connection). A session starts with a line handshake that also skips any
// stale bytes left in the channel by an earlier session:
//
//	host:  "BANGER-HELLO <nonce>\n"
//	agent: "BANGER-READY <nonce> <agent-version>\n"
//
// after which both sides run yamux (host = client, agent = server). Every
// yamux stream carries one request: a JSON Request line from the host, a
// JSON Response line from the agent, then for exec the binary frames below.
//
// The host resends its HELLO (same nonce) until READY arrives, because
// on virtio-serial a copy can be swallowed by the agent's previous
// session. The agent therefore drops whole HELLO lines with the answered
// nonce that precede the first yamux byte (a yamux frame starts with
// version 0, never 'B'); a HELLO with another nonce there means a new host
// is starting over, and the agent answers it on the same channel.

// ProtocolVersion is bumped on incompatible changes to this file.
const ProtocolVersion = 1

const (
	HelloPrefix = "BANGER-HELLO "
	ReadyPrefix = "BANGER-READY "
)

// Operations.
const (
	OpPing     = "ping"
	OpExec     = "exec"
	OpShutdown = "shutdown"
)

// Request is the first line of every stream.
type Request struct {
	Op   string       `json:"op"`
	Exec *ExecRequest `json:"exec,omitempty"`
	// Params carries the parameters of ops other than exec, each op
	// defining its own type.
	Params json.RawMessage `json:"params,omitempty"`
}

// ExecRequest starts a process in the guest. It is also the command of
// the daemon's vm.run and vm.exec (api.RunParams, api.ExecParams embed
// it), so the CLI's request reaches the agent without being copied.
type ExecRequest struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env,omitempty"` // KEY=VALUE added to a default environment
	Dir  string   `json:"dir,omitempty"` // default /root (the user's home with User)
	// MakeDir creates Dir (mode 0755, owned by root) when it is missing,
	// as container runtimes do for an image's WorkingDir.
	MakeDir bool `json:"make_dir,omitempty"`
	// User runs the process as this guest user: a name or uid, optionally
	// :group or :gid (as an OCI image's config says it); default root.
	User string `json:"user,omitempty"`
	// TTY, when set, runs the process on a new pseudo-terminal of that
	// size: its stdin, stdout and stderr are the terminal, output comes
	// as FrameStdout only, and FrameResize changes the size.
	TTY *WinSize `json:"tty,omitempty"`
	// ReportPID asks for a FramePID frame before any output (fs.go).
	ReportPID bool `json:"report_pid,omitempty"`
}

// WinSize is a terminal's size in characters.
type WinSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Info describes the agent and the guest.
type Info struct {
	Version       string  `json:"version"`
	Protocol      int     `json:"protocol"`
	Hostname      string  `json:"hostname"`
	KernelRelease string  `json:"kernel_release"`
	PID1          string  `json:"pid1"`           // "agent" or the init program
	UptimeSeconds float64 `json:"uptime_seconds"` // guest /proc/uptime
}

// Response is the agent's reply line.
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Info  *Info  `json:"info,omitempty"`
	// Data carries the result of ops other than ping.
	Data json.RawMessage `json:"data,omitempty"`
}

// Exec frame types.
const (
	FrameStdin    byte = 1 // host -> guest: stdin bytes
	FrameStdinEOF byte = 2 // host -> guest: stdin closed
	FrameStdout   byte = 3 // guest -> host
	FrameStderr   byte = 4 // guest -> host
	FrameExit     byte = 5 // guest -> host: ExitStatus JSON, last frame
	FrameSignal   byte = 6 // host -> guest: signal number (1 byte)
	FrameResize   byte = 7 // host -> guest: rows, cols (2 bytes each, big endian) of a TTY exec
)

// Frame is one host -> guest control frame (a signal, a resize) for
// PumpExec to send between stdin frames.
type Frame struct {
	Type    byte
	Payload []byte
}

// SignalFrame asks the guest to signal the process group.
func SignalFrame(sig byte) Frame { return Frame{FrameSignal, []byte{sig}} }

// ResizeFrame sets a TTY exec's terminal size.
func ResizeFrame(ws WinSize) Frame {
	p := make([]byte, 4)
	binary.BigEndian.PutUint16(p, ws.Rows)
	binary.BigEndian.PutUint16(p[2:], ws.Cols)
	return Frame{FrameResize, p}
}

// ParseResize decodes a FrameResize payload.
func ParseResize(p []byte) (WinSize, bool) {
	if len(p) != 4 {
		return WinSize{}, false
	}
	return WinSize{Rows: binary.BigEndian.Uint16(p), Cols: binary.BigEndian.Uint16(p[2:])}, true
}

// MaxFrame bounds one frame's payload.
const MaxFrame = 1 << 20

// ExitStatus ends an exec stream.
type ExitStatus struct {
	Code   int    `json:"code"`             // 128+signal when killed by a signal
	Signal string `json:"signal,omitempty"` // set when killed by a signal
	Error  string `json:"error,omitempty"`  // the process could not start
}

// WriteLine writes v as one JSON line.
func WriteLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadLine reads one JSON line into v. It reads byte by byte so that no
// bytes after the line are consumed.
func ReadLine(r io.Reader, v any) error {
	var sb strings.Builder
	one := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, one); err != nil {
			return err
		}
		if one[0] == '\n' {
			break
		}
		if sb.Len() > MaxFrame {
			return errors.New("line too long")
		}
		sb.WriteByte(one[0])
	}
	return json.Unmarshal([]byte(sb.String()), v)
}

// WriteFrame writes one exec frame.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(payload), MaxFrame)
	}
	hdr := make([]byte, 5, 5+len(payload))
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	_, err := w.Write(append(hdr, payload...))
	return err
}

// ReadFrame reads one exec frame.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes exceeds %d", n, MaxFrame)
	}
	// Memory follows the bytes that arrive, not the length a peer
	// claims: a guest announcing MaxFrame and sending nothing more pins
	// nothing.
	if n <= frameChunk {
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return 0, nil, err
		}
		return hdr[0], p, nil
	}
	var buf bytes.Buffer
	buf.Grow(frameChunk)
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], buf.Bytes(), nil
}

// frameChunk is the largest frame ReadFrame allocates whole up front.
const frameChunk = 64 << 10

// FrameWriter turns writes into frames of one type (for stdout/stderr).
type FrameWriter struct {
	W    io.Writer
	Type byte
}

func (f FrameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), 32<<10)
		if err := WriteFrame(f.W, f.Type, p[:c]); err != nil {
			return n, err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

// PumpExec drives the host side of an exec stream whose Response line has
// already been read: it copies stdin into frames, demultiplexes output, and
// returns the exit status. Control frames sent on ctl (signals, resizes)
// are forwarded to the guest. Writes to conn are serialised by the
// caller's single goroutine.
func PumpExec(conn io.ReadWriter, stdin io.Reader, stdout, stderr io.Writer, ctl <-chan Frame) (ExitStatus, error) {
	var st ExitStatus
	out := make(chan []byte, 16)
	// done is closed on return so that the stdin reader and the writer
	// never block on out once nobody drains it.
	done := make(chan struct{})
	defer close(done)
	send := func(f []byte) bool {
		select {
		case out <- f:
			return true
		case <-done:
			return false
		}
	}
	if stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					f := make([]byte, 5+n)
					f[0] = FrameStdin
					binary.BigEndian.PutUint32(f[1:], uint32(n))
					copy(f[5:], buf[:n])
					if !send(f) {
						return
					}
				}
				if err != nil {
					send([]byte{FrameStdinEOF, 0, 0, 0, 0})
					return
				}
			}
		}()
	} else {
		out <- []byte{FrameStdinEOF, 0, 0, 0, 0}
	}
	go func() {
		for {
			select {
			case f := <-out:
				if _, err := conn.Write(f); err != nil {
					return
				}
			case f := <-ctl:
				if err := WriteFrame(conn, f.Type, f.Payload); err != nil {
					return
				}
			case <-done:
				return
			}
		}
	}()
	for {
		typ, p, err := ReadFrame(conn)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return st, fmt.Errorf("read exec stream: %w", err)
		}
		switch typ {
		case FrameStdout:
			if _, err := stdout.Write(p); err != nil {
				return st, err
			}
		case FrameStderr:
			if _, err := stderr.Write(p); err != nil {
				return st, err
			}
		case FrameExit:
			if err := json.Unmarshal(p, &st); err != nil {
				return st, fmt.Errorf("decode exit status: %w", err)
			}
			return st, nil
		}
	}
}

// maxScanLine bounds how much of one line ScanForLine keeps in memory, so
// a peer that streams bytes without a newline cannot exhaust the reader.
const maxScanLine = 64 << 10

// ScanForLine reads from r until a line starting with prefix appears and
// returns the rest of that line. Bytes before it are discarded.
func ScanForLine(r *bufio.Reader, prefix string) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxScanLine {
			line = trimScanLine(line, prefix)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		if i := bytes.Index(line, []byte(prefix)); i >= 0 {
			return strings.TrimRight(string(line[i+len(prefix):]), "\r\n"), nil
		}
		line = line[:0]
	}
}

// trimScanLine shortens an over-long partial line while keeping anything
// that may still become a match: a prefix already seen (if what follows
// it is short enough to be real) or a tail that may hold its first bytes.
func trimScanLine(line []byte, prefix string) []byte {
	if i := bytes.Index(line, []byte(prefix)); i >= 0 && len(line)-i <= maxScanLine {
		return append(line[:0], line[i:]...)
	}
	keep := len(prefix) - 1
	return append(line[:0], line[len(line)-keep:]...)
}
