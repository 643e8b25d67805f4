package kernel

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/image"
)

// maxKernelFile bounds each file of a kernel bundle (decompression bombs).
const maxKernelFile = 512 << 20

// bundleFiles are the names a kernel bundle may hold.
var bundleFiles = map[string]bool{VmlinuxFile: true, VmlinuzFile: true, ModulesFile: true, InfoFile: true}

// InstallBundle unpacks a verified kernel bundle (.tar.zst) into dir,
// replacing it atomically. release is the catalog's word for uname -r,
// used when the bundle has no kernel.json.
func InstallBundle(bundle, dir, release string) (Info, error) {
	f, err := os.Open(bundle)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	dec, closeDec, err := image.Decompress(f, 1<<30)
	if err != nil {
		return Info{}, fmt.Errorf("kernel bundle: %w", err)
	}
	defer closeDec()
	files := map[string][]byte{}
	tr := tar.NewReader(dec)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Info{}, fmt.Errorf("kernel bundle: %w", err)
		}
		name := path.Clean(hdr.Name)
		if strings.HasPrefix(hdr.Name, "/") || !bundleFiles[name] || hdr.Typeflag != tar.TypeReg || files[name] != nil {
			return Info{}, fmt.Errorf("kernel bundle entry %q: unexpected (allowed: regular files vmlinux, vmlinuz, modules.cpio, kernel.json), refused", hdr.Name)
		}
		if hdr.Size > maxKernelFile {
			return Info{}, fmt.Errorf("kernel bundle entry %q: %d bytes is over the limit, refused", hdr.Name, hdr.Size)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxKernelFile))
		if err != nil {
			return Info{}, fmt.Errorf("kernel bundle entry %q: %w", hdr.Name, err)
		}
		files[name] = b
	}
	return install(dir, files, release)
}

// InstallFiles imports a kernel from loose files: a vmlinuz (bzImage) or
// an ELF vmlinux, and optionally a modules.cpio as `kernel import` of a
// package writes it.
func InstallFiles(dir, kernelPath, modulesPath, release string) (Info, error) {
	files := map[string][]byte{}
	b, err := os.ReadFile(kernelPath)
	if err != nil {
		return Info{}, err
	}
	if isELF(b) {
		files[VmlinuxFile] = b
	} else {
		files[VmlinuzFile] = b
	}
	if modulesPath != "" {
		if files[ModulesFile], err = os.ReadFile(modulesPath); err != nil {
			return Info{}, err
		}
	}
	return install(dir, files, release)
}

func isELF(b []byte) bool { return bytes.HasPrefix(b, []byte("\x7fELF")) }

// isBzImage checks the Linux boot protocol's "HdrS" signature.
func isBzImage(b []byte) bool { return len(b) > 0x206 && string(b[0x202:0x206]) == "HdrS" }

func install(dir string, files map[string][]byte, release string) (Info, error) {
	var info Info
	if js := files[InfoFile]; js != nil {
		if err := json.Unmarshal(js, &info); err != nil {
			return info, fmt.Errorf("kernel.json: %w", err)
		}
	}
	if release != "" {
		info.Release = release
	}
	if info.Release == "" {
		return info, errors.New("kernel: no release known (give it, or ship a kernel.json)")
	}
	vmlinux, vmlinuz := files[VmlinuxFile], files[VmlinuzFile]
	switch {
	case vmlinux == nil && vmlinuz == nil:
		return info, errors.New("kernel: neither vmlinux nor vmlinuz given")
	case vmlinux != nil && !isELF(vmlinux):
		return info, errors.New("kernel: vmlinux is not an ELF file")
	case vmlinuz != nil && !isBzImage(vmlinuz) && !isELF(vmlinuz):
		return info, errors.New("kernel: vmlinuz is neither a bzImage nor an ELF file")
	}
	if vmlinuz == nil {
		vmlinuz = vmlinux // QEMU boots an ELF vmlinux too
	}
	mods := files[ModulesFile]
	if mods != nil && !bytes.HasPrefix(mods, []byte("070701")) {
		return info, errors.New("kernel: modules.cpio is not a newc cpio archive")
	}
	if mods == nil {
		// A kernel with its drivers built in: the initramfs still expects
		// the (empty) module list.
		var b bytes.Buffer
		if err := writeModulesCPIO(&b, nil, time.Unix(0, 0)); err != nil {
			return info, err
		}
		mods = b.Bytes()
	}
	info.Created = time.Now().UTC().Truncate(time.Second)
	js, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return info, err
	}
	put := func(tmp, name string, b []byte) error {
		return writeFileSync(filepath.Join(tmp, name), func(f *os.File) error { _, err := f.Write(b); return err })
	}
	err = replaceDir(dir, func(tmp string) error {
		if vmlinux != nil {
			if err := put(tmp, VmlinuxFile, vmlinux); err != nil {
				return err
			}
		}
		if err := put(tmp, VmlinuzFile, vmlinuz); err != nil {
			return err
		}
		if err := put(tmp, ModulesFile, mods); err != nil {
			return err
		}
		return put(tmp, InfoFile, append(js, '\n'))
	})
	return info, err
}
