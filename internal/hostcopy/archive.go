package hostcopy

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// HeaderWriter is the tar writer Archive fills (*tar.Writer, or the agent
// client's counting TarWriter).
type HeaderWriter interface {
	WriteHeader(*tar.Header) error
	Write([]byte) (int, error)
}

// Archive writes src (a file, directory or symlink) to w under its own
// last element, docker cp style: symlinks are sent as symlinks, src
// itself included, and never followed, so nothing outside the tree is
// read; files are opened with O_NOFOLLOW. Sockets, fifos and devices are
// skipped and returned. progress (optional) gets file bytes as they go.
func Archive(w HeaderWriter, src string, progress func(int64)) (skipped []string, err error) {
	clean := filepath.Clean(src)
	if _, err := os.Lstat(clean); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or directory", src)
		}
		return nil, err
	}
	base := filepath.Base(clean)
	if base == "/" || base == "." || base == ".." {
		return nil, fmt.Errorf("%s: name a file or directory to copy, not %q", src, base)
	}
	buf := make([]byte, 256<<10)
	err = filepath.WalkDir(clean, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(clean, p)
		if err != nil {
			return err
		}
		name := base
		if rel != "." {
			name = base + "/" + filepath.ToSlash(rel)
		}
		ok, err := addLocal(w, p, name, buf, progress)
		if err == nil && !ok {
			skipped = append(skipped, p)
		}
		return err
	})
	return skipped, err
}

// addLocal writes one entry; false when its type is not copied.
func addLocal(w HeaderWriter, p, name string, buf []byte, progress func(int64)) (bool, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	var link string
	switch fi.Mode().Type() {
	case 0, fs.ModeDir:
	case fs.ModeSymlink:
		if link, err = os.Readlink(p); err != nil {
			return false, err
		}
	default:
		return false, nil
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return false, err
	}
	hdr.Name, hdr.Format, hdr.Uname, hdr.Gname = name, tar.FormatPAX, "", ""
	hdr.Mode &= 0o777
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if !fi.Mode().IsRegular() {
		return true, w.WriteHeader(hdr)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if err := w.WriteHeader(hdr); err != nil {
		return false, err
	}
	var pw io.Writer = w
	if progress != nil {
		pw = progressWriter{w, progress}
	}
	n, err := io.CopyBuffer(pw, io.LimitReader(f, hdr.Size), buf)
	if err == nil && n < hdr.Size {
		err = errors.New("it shrank while being copied")
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	return true, nil
}

type progressWriter struct {
	w  io.Writer
	fn func(int64)
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.fn(int64(n))
	return n, err
}
