package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// Register registers the ext4 file read from rootfs (the client's bytes:
// the daemon opens no client path) as an image. The bytes go to a
// temporary file in the image store, which is checked, then published;
// a short, failed or cancelled upload and a file that is not ext4 leave
// nothing behind.
func (s *Service) Register(ctx context.Context, p api.RegisterImageParams, rootfs io.Reader, r progress.Reporter) (api.ImageInfo, error) {
	im, notes, err := s.registerImage(ctx, p, rootfs, r)
	if err != nil {
		return api.ImageInfo{}, err
	}
	return s.imageInfo(ctx, im, notes)
}

func (s *Service) registerImage(ctx context.Context, p api.RegisterImageParams, rootfs io.Reader, r progress.Reporter) (store.Image, []string, error) {
	if !dnsLabel.MatchString(p.Name) {
		return store.Image{}, nil, api.Invalidf("image name %q: use lowercase letters, digits and '-'", p.Name)
	}
	if _, err := s.store.GetImage(ctx, p.Name); err == nil {
		return store.Image{}, nil, api.Conflictf("image %q already exists", p.Name)
	}
	label := p.Rootfs
	if label == "" {
		label = "the uploaded rootfs"
	}
	tmp, err := s.newImageFile(p.Name)
	if err != nil {
		return store.Image{}, nil, err
	}
	defer discardTemp(tmp)
	if err := receive(ctx, tmp, rootfs, p.Size, progress.NewBytes(r, api.StageUpload, "rootfs")); err != nil {
		return store.Image{}, nil, api.Invalidf("image register: %v; nothing was registered", err)
	}
	insp, err := image.Inspect(tmp.Name())
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), tmp.Name(), label)
		return store.Image{}, nil, api.Invalidf("image register: %s (an ext4 filesystem image is expected)", msg)
	}
	if p.Kernel != "" {
		if _, err := s.ensureKernel(ctx, p.Kernel, progress.Discard); err != nil {
			return store.Image{}, nil, err
		}
	}
	source := "upload"
	if p.Rootfs != "" {
		source = "file " + p.Rootfs
	}
	im, err := s.publish(ctx, tmp, store.Image{Name: p.Name, Source: source, Kernel: p.Kernel,
		Init: initOf(insp.Init), HasSSHD: insp.HasSSHD})
	return im, describeContents(insp.Init, insp.InitTarget, insp.HasSSHD), err
}

// receive copies an upload of size bytes (0: unknown) from body to f,
// reporting progress; it fails when ctx ends, when the body fails (the
// client went away) and when it ends short of size or runs past it.
func receive(ctx context.Context, f *os.File, body io.Reader, size int64, bar *progress.Bytes) error {
	if body == nil {
		return errors.New("no file was sent")
	}
	src := io.Reader(image.ContextReader(ctx, body))
	if size > 0 {
		src = io.LimitReader(src, size+1)
	}
	n, err := io.Copy(f, &countReader{r: src, done: func(done int64) { bar.Update(done, size) }})
	if err != nil {
		return fmt.Errorf("upload failed after %s: %w", config.FormatSize(n), err)
	}
	if size > 0 && n != size {
		return fmt.Errorf("the upload has %d bytes where %d were announced (the file was cut short, or changed while it was sent)", n, size)
	}
	bar.Finish()
	return nil
}

// receiveTemp stores an upload in a temporary file of the download
// cache (swept at start-up if ever left); cleanup removes it.
func (s *Service) receiveTemp(ctx context.Context, body io.Reader, size int64, what string, r progress.Reporter) (string, func(), error) {
	dir := filepath.Join(s.paths.CacheDir, "downloads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(dir, "upload-*")
	if err != nil {
		return "", nil, err
	}
	err = receive(ctx, f, body, size, progress.NewBytes(r, api.StageUpload, what))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", nil, err
	}
	return f.Name(), func() { os.Remove(f.Name()) }, nil
}

// relabel names the client's file where an error names the daemon's
// temporary copy of it.
func relabel(err error, tmp, label string) error {
	if err == nil || !strings.Contains(err.Error(), tmp) {
		return err
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return &api.Error{Code: ae.Code, Message: strings.ReplaceAll(err.Error(), tmp, label)}
	}
	return errors.New(strings.ReplaceAll(err.Error(), tmp, label))
}

// countReader reports the running total of bytes read.
type countReader struct {
	r    io.Reader
	n    int64
	done func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.done(c.n)
	return n, err
}
