package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
)

// Files that image and kernel commands send to the daemon, or receive
// from it, travel as the calls' bodies: the daemon opens no path of ours.

// registerRootfs sends the file p.Rootfs names to image.register.
func registerRootfs(ctx context.Context, env *Env, p api.RegisterImageParams) (api.ImageInfo, error) {
	f, size, err := openUpload("image register: --rootfs", p.Rootfs)
	if err != nil {
		return api.ImageInfo{}, err
	}
	defer f.Close()
	p.Rootfs, p.Size = f.Name(), size
	show, done := bytesPrinter(env)
	info, err := env.Client.ImageRegister(ctx, p, f, show)
	done()
	return info, err
}

// openUpload opens a file to send, by its absolute name (which the
// daemon records), with its size (0 when not a regular file).
func openUpload(what, path string) (*os.File, int64, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = fmt.Errorf("%s: %s is a directory, not a file", what, abs)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		return f, 0, nil // a device or a pipe: size unknown
	}
	return f, st.Size(), nil
}

// importKernelPackage runs kernel.import, sending the --deb file when
// one is given.
func importKernelPackage(ctx context.Context, env *Env, p api.ImportKernelParams) (api.Kernel, error) {
	var deb io.Reader
	if p.DebFile != "" {
		f, size, err := openUpload("kernel import: --deb", p.DebFile)
		if err != nil {
			return api.Kernel{}, err
		}
		defer f.Close()
		p.DebFile, p.Size, deb = f.Name(), size, f
	}
	show, done := bytesPrinter(env)
	k, err := env.Client.KernelImport(ctx, p, deb, show)
	done()
	return k, err
}

// sendKernelFiles runs kernel.import_files with the --kernel and
// --modules files.
func sendKernelFiles(ctx context.Context, env *Env, p api.ImportKernelFilesParams) (api.KernelInfo, error) {
	var ups [2]client.Upload
	for i, f := range []*string{&p.Kernel, &p.Modules} {
		if *f == "" {
			continue
		}
		flag := [2]string{"--kernel", "--modules"}[i]
		file, size, err := openUpload("kernel import: "+flag, *f)
		if err == nil && size == 0 {
			file.Close()
			err = fmt.Errorf("kernel import: %s %s: not a regular file, or empty", flag, file.Name())
		}
		if err != nil {
			return api.KernelInfo{}, err
		}
		defer file.Close()
		*f, ups[i] = file.Name(), client.Upload{R: file, Size: size}
	}
	show, done := bytesPrinter(env)
	info, err := env.Client.KernelImportFiles(ctx, p, ups[0], ups[1], show)
	done()
	return info, err
}
