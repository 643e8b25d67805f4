package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/api"
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
