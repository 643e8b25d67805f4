package agent

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func init() { ops[proto.OpCopyOut] = (*Server).handleCopyOut }

// maxSkippedNamed bounds the skipped names a trailer carries.
const maxSkippedNamed = 20

// handleCopyOut sends a guest path as a tar stream (vm cp NAME:SRC DST).
// Nothing is followed: a symlink, Path included, is sent as a symlink,
// and files are opened with O_NOFOLLOW, so a tree changing under the copy
// cannot lead it elsewhere.
func (s *Server) handleCopyOut(st net.Conn, req proto.Request) {
	var p proto.CopyOutParams
	if err := json.Unmarshal(req.Params, &p); err != nil {
		proto.WriteLine(st, proto.Response{Error: "copy_out: bad params: " + err.Error()})
		return
	}
	src := filepath.Clean(p.Path)
	if !filepath.IsAbs(p.Path) || src == "/" {
		proto.WriteLine(st, proto.Response{Error: fmt.Sprintf("copy_out: %q must be an absolute path below /", p.Path)})
		return
	}
	if _, err := os.Lstat(src); err != nil {
		msg := fmt.Sprintf("%s: %v", p.Path, err)
		if errors.Is(err, os.ErrNotExist) {
			msg = fmt.Sprintf("%s: no such file or directory in the guest", p.Path)
		}
		proto.WriteLine(st, proto.Response{Error: msg})
		return
	}
	if err := proto.WriteLine(st, proto.Response{OK: true}); err != nil {
		return
	}
	// A host that stops reading must not pin the copy forever.
	w := &idleWriter{st}
	bw := bufio.NewWriterSize(w, 256<<10)
	out := &archiver{tw: tar.NewWriter(bw)}
	err := out.walk(src)
	tl := proto.CopyTrailer{Done: err == nil, Entries: out.entries, Skipped: out.skipped}
	if more := out.nskip - len(out.skipped); more > 0 {
		tl.Skipped = append(tl.Skipped, fmt.Sprintf("(and %d more)", more))
	}
	if err != nil {
		if errors.Is(err, errSendArchive) {
			s.log().Warn("copy_out: host went away", "path", src, "err", err)
			return
		}
		tl.Error = err.Error()
	}
	if err := out.tw.Close(); err != nil {
		return
	}
	if proto.WriteLine(bw, tl) != nil || bw.Flush() != nil {
		return
	}
	s.log().Info("copy_out", "path", src, "entries", out.entries, "bytes", out.bytes, "err", tl.Error)
	// Wait (briefly) for the host to close: the last bytes must not be
	// lost with a stream torn down right after writing them.
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, st)
}

var errSendArchive = errors.New("send archive")

type idleWriter struct{ st net.Conn }

func (w *idleWriter) Write(p []byte) (int, error) {
	w.st.SetWriteDeadline(time.Now().Add(copyIdle))
	n, err := w.st.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errSendArchive, err)
	}
	return n, err
}

// archiver writes one tar stream of a guest tree.
type archiver struct {
	tw      *tar.Writer
	entries int64
	bytes   int64
	skipped []string
	nskip   int
	buf     []byte
}

// walk archives src under its own last element. WalkDir never follows
// symlinks (it uses lstat and does not descend into them).
func (a *archiver) walk(src string) error {
	base := filepath.Base(src)
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := base
		if rel != "." {
			name = base + "/" + filepath.ToSlash(rel)
		}
		return a.add(p, name)
	})
}

// add writes one entry; a file that changed while being read stops the
// copy with an error in the trailer (its entry is padded so the archive
// stays well formed).
func (a *archiver) add(p, name string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	var link string
	switch fi.Mode().Type() {
	case 0, fs.ModeDir:
	case fs.ModeSymlink:
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	default:
		a.nskip++
		if len(a.skipped) < maxSkippedNamed {
			a.skipped = append(a.skipped, name)
		}
		return nil
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name, hdr.Format = name, tar.FormatPAX
	hdr.Uname, hdr.Gname = "", ""
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if !fi.Mode().IsRegular() {
		return a.header(hdr)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if err := a.header(hdr); err != nil {
		return err
	}
	if a.buf == nil {
		a.buf = make([]byte, 256<<10)
	}
	n, err := io.CopyBuffer(a.tw, io.LimitReader(f, hdr.Size), a.buf)
	a.bytes += n
	if err != nil && errors.Is(err, errSendArchive) {
		return err
	}
	if n < hdr.Size {
		if _, perr := io.CopyN(a.tw, zeros{}, hdr.Size-n); perr != nil {
			return perr
		}
		if err == nil {
			err = errors.New("it shrank while being copied")
		}
		return fmt.Errorf("read %s: %w", p, err)
	}
	return nil
}

func (a *archiver) header(h *tar.Header) error {
	a.entries++
	return a.tw.WriteHeader(h)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
