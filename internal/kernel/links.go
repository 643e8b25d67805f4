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
// vmlinuz must be a regular file in a real directory, every directory
// from the tree's root to the module directory a real directory, and
// every symlink inside the module directory relative and resolving
// inside it, both as text and as the kernel follows it.
func checkUnpacked(u unpackedPackage) error {
	fi, err := os.Lstat(u.vmlinuz)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return refuseLink(u.root, u.vmlinuz, "is not a regular file")
	}
	if fi, err := os.Lstat(filepath.Dir(u.vmlinuz)); err != nil || !fi.IsDir() {
		return refuseLink(u.root, filepath.Dir(u.vmlinuz), "is not a directory (a symlink?)")
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
	realMods, err := filepath.EvalSymlinks(u.modDir)
	if err != nil {
		return err
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
		// Cleaning the target as text is not enough: the kernel resolves
		// each link on the way before a following "..", so a link to "."
		// lets "here/here/../../x" climb out while it reads as inside.
		// The link is followed as the readers will follow it.
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			return refuseLink(u.root, p, "is a symlink to "+target+", which does not resolve inside the module directory")
		}
		if !within(u.modDir, filepath.Join(filepath.Dir(p), target)) || !within(realMods, resolved) {
			return refuseLink(u.root, p, "is a symlink to "+target+", which leaves the module directory")
		}
		return nil
	})
}

// within reports whether p is dir or below it (both clean and absolute).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func refuseLink(root, p, why string) error {
	rel, _ := filepath.Rel(root, p)
	return fmt.Errorf("import kernel: %s in the package %s: refused", rel, why)
}
