package artifacts

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// maxKernelUpload bounds each file of a kernel.import_files body.
const maxKernelUpload = 512 << 20

// KernelImportFiles registers a kernel from loose files the client sends
// as a tar (api.KernelFilesEntry*): a vmlinuz or vmlinux, and optionally
// a modules.cpio. A failed or short upload registers nothing.
func (s *Service) KernelImportFiles(ctx context.Context, p api.ImportKernelFilesParams, files io.Reader, r progress.Reporter) (api.KernelInfo, error) {
	if !dnsLabel.MatchString(p.Name) {
		return api.KernelInfo{}, api.Invalidf("kernel name %q: use lowercase letters, digits and '-'", p.Name)
	}
	if p.Release == "" {
		return api.KernelInfo{}, api.Invalidf("kernel import --kernel: --release (the kernel's uname -r) is required")
	}
	if _, err := s.store.GetKernel(ctx, p.Name); err == nil {
		return api.KernelInfo{}, api.Conflictf("kernel %q already exists", p.Name)
	}
	dl := filepath.Join(s.paths.CacheDir, "downloads")
	if err := os.MkdirAll(dl, 0o700); err != nil {
		return api.KernelInfo{}, err
	}
	up, err := os.MkdirTemp(dl, "kernel-upload-*")
	if err != nil {
		return api.KernelInfo{}, err
	}
	defer os.RemoveAll(up)
	got, err := receiveKernelFiles(ctx, files, up, r)
	if err != nil {
		return api.KernelInfo{}, api.Invalidf("kernel import: %v; nothing was imported", err)
	}
	if got[api.KernelFilesEntryKernel] == "" {
		return api.KernelInfo{}, api.Invalidf("kernel import: no kernel file was sent")
	}
	if p.Modules != "" && got[api.KernelFilesEntryModules] == "" {
		return api.KernelInfo{}, api.Invalidf("kernel import: --modules %s was not sent", p.Modules)
	}
	label := p.Kernel
	if label == "" {
		label = "upload"
	}
	dir := filepath.Join(s.paths.KernelDir(), p.Name+"-"+randHex(4))
	info, err := kernel.InstallFiles(dir, got[api.KernelFilesEntryKernel], got[api.KernelFilesEntryModules], p.Release)
	if err == nil {
		err = kernel.EnsureELF(dir)
	}
	if err != nil {
		os.RemoveAll(dir)
		return api.KernelInfo{}, api.Invalidf("kernel import: %v", relabel(err, up, "upload"))
	}
	k, err := s.publishKernel(ctx, store.Kernel{Name: p.Name, Dir: dir, Release: info.Release, Source: "files " + label})
	if err != nil {
		return api.KernelInfo{}, err
	}
	return s.kernelInfo(ctx, k.Name)
}

// receiveKernelFiles unpacks the body's tar into dir, returning the path
// of each entry it holds.
func receiveKernelFiles(ctx context.Context, body io.Reader, dir string, r progress.Reporter) (map[string]string, error) {
	if body == nil {
		return nil, errors.New("no files were sent")
	}
	tr := tar.NewReader(image.ContextReader(ctx, body))
	got := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		name := hdr.Name
		if name != api.KernelFilesEntryKernel && name != api.KernelFilesEntryModules || hdr.Typeflag != tar.TypeReg || got[name] != "" {
			return nil, fmt.Errorf("upload: unexpected entry %q (want one %q and at most one %q)", name, api.KernelFilesEntryKernel, api.KernelFilesEntryModules)
		}
		if hdr.Size > maxKernelUpload {
			return nil, fmt.Errorf("upload: %s is %d bytes (limit %d)", name, hdr.Size, maxKernelUpload)
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		err = receive(ctx, f, tr, hdr.Size, progress.NewBytes(r, api.StageUpload, name))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		got[name] = f.Name()
	}
}
