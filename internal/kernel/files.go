package kernel

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/cavaliergopher/cpio"
)

// moduleFile is one module to put in the initramfs.
type moduleFile struct {
	Name string // file name inside proto.ModulesDir
	Path string // on the host
}

// writeModulesCPIO writes a newc archive holding proto.ModulesDir with the
// modules and proto.ModulesOrder listing them in load order. Parent
// directories are included because the kernel's initramfs unpacker does
// not create missing ones.
func writeModulesCPIO(w io.Writer, mods []moduleFile, mtime time.Time) error {
	cw := cpio.NewWriter(w)
	dir := strings.TrimPrefix(proto.ModulesDir, "/")
	var parts []string
	for _, p := range strings.Split(dir, "/") {
		parts = append(parts, p)
		if err := cw.WriteHeader(&cpio.Header{Name: path.Join(parts...), Mode: cpio.TypeDir | 0o755, Links: 2, ModTime: mtime}); err != nil {
			return err
		}
	}
	var order strings.Builder
	for _, m := range mods {
		if strings.Contains(m.Name, "/") {
			return fmt.Errorf("bad module file name %q", m.Name)
		}
		if err := addFile(cw, path.Join(dir, m.Name), m.Path, mtime); err != nil {
			return err
		}
		order.WriteString(m.Name + "\n")
	}
	hdr := &cpio.Header{Name: strings.TrimPrefix(proto.ModulesOrder, "/"), Mode: cpio.TypeReg | 0o644, Size: int64(order.Len()), ModTime: mtime}
	if err := cw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.WriteString(cw, order.String()); err != nil {
		return err
	}
	return cw.Close()
}

func addFile(cw *cpio.Writer, name, src string, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := cw.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeReg | 0o644, Size: st.Size(), ModTime: mtime}); err != nil {
		return err
	}
	_, err = io.Copy(cw, f)
	return err
}

// replaceDir builds a directory with fill in dir+".tmp-*" and swaps it in
// for dir, so readers see either the old kernel or the complete new one.
// An existing dir is moved aside first and removed afterwards (rename(2)
// cannot replace a non-empty directory).
func replaceDir(dir string, fill func(tmp string) error) (err error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	var old string
	if _, serr := os.Lstat(dir); serr == nil {
		old = tmp + ".old"
		if err = os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir) // put the previous kernel back
		}
		return err
	}
	syncDir(parent)
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// writeFileSync creates path, lets fill write it and fsyncs it.
func writeFileSync(path string, fill func(f *os.File) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFileSync(dst, func(f *os.File) error {
		_, err := io.Copy(f, in)
		return err
	})
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // durability of a rename; not fatal where unsupported
		d.Close()
	}
}
