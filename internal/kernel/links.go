package kernel

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// checkUnpacked refuses a package whose files banger reads could lead out
// of the unpacked tree. The import copies boot/vmlinuz-*, reads and copies
// modules (into the initramfs) and hands the module directory to depmod
// and mkfs.ext4 -d (the module disk every guest of the kernel mounts): a
// symlink there to /etc/passwd, or a module directory that is itself a
// link to a host directory, would carry host files into guests. So
// vmlinuz must be a regular file, every directory from the tree's root to
// the module directory a real directory, and every symlink inside the
// module directory relative and resolving inside it.
func checkUnpacked(u unpackedPackage) error {
	fi, err := os.Lstat(u.vmlinuz)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return refuseLink(u.root, u.vmlinuz, "is not a regular file")
	}
	rel, err := filepath.Rel(u.root, u.modDir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("import kernel: module directory %s is outside the package", u.modDir)
	}
	p := u.root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return refuseLink(u.root, p, "is not a directory (a symlink?)")
		}
	}
	return filepath.WalkDir(u.modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			return refuseLink(u.root, p, "is a symlink to "+target+", outside the package")
		}
		in, err := filepath.Rel(u.modDir, filepath.Join(filepath.Dir(p), target))
		if err != nil || in == ".." || strings.HasPrefix(in, "../") {
			return refuseLink(u.root, p, "is a symlink to "+target+", which leaves the module directory")
		}
		return nil
	})
}

func refuseLink(root, p, why string) error {
	rel, _ := filepath.Rel(root, p)
	return fmt.Errorf("import kernel: %s in the package %s: refused", rel, why)
}
