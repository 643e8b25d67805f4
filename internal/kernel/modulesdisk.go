package kernel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/google/uuid"
)

// ModulesDiskFile is the ext4 filesystem holding a kernel's whole module
// tree (lib/modules/<release>, with depmod's indexes at its root). The
// daemon attaches it read-only and the agent mounts it at
// /lib/modules/<release>, so modprobe works in the guest. Kernels from
// the catalog or loose files may lack it.
const ModulesDiskFile = "modules.ext4"

// ModulesDiskLabel is the ext4 label of a modules disk.
const ModulesDiskLabel = "banger-modules"

// HasModulesDisk reports whether an imported kernel directory has a
// modules disk its kernel.json knows the UUID of.
func HasModulesDisk(dir string, info Info) bool {
	if info.ModulesUUID == "" {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, ModulesDiskFile))
	return err == nil && st.Mode().IsRegular()
}

// buildModulesDisk runs depmod on the unpacked package tree (the .deb
// ships no modules.dep: its postinst makes it) and writes modDir — the
// tree's lib/modules/<release> — as an ext4 filesystem at out with a fresh
// random UUID, which it returns. The UUID is what the agent finds the
// disk by; tar2ext4's all-zero UUID would make it look like the base
// image. Files keep the importing user's ownership (mkfs.ext4 -d copies
// it); a read-only module tree does not care.
func buildModulesDisk(ctx context.Context, tree, modDir, release, out string) (string, error) {
	depmod, err := SbinTool("depmod", "kmod")
	if err != nil {
		return "", err
	}
	mkfs, err := SbinTool("mkfs.ext4", "e2fsprogs")
	if err != nil {
		return "", err
	}
	// depmod -b reads <tree>/lib/modules; a merged-/usr package has
	// usr/lib/modules only.
	if _, err := os.Lstat(filepath.Join(tree, "lib")); errors.Is(err, fs.ErrNotExist) {
		if err := os.Symlink("usr/lib", filepath.Join(tree, "lib")); err != nil {
			return "", err
		}
	}
	if b, err := exec.CommandContext(ctx, depmod, "-b", tree, release).CombinedOutput(); err != nil {
		return "", fmt.Errorf("depmod -b %s %s: %w: %s", tree, release, err, bytes.TrimSpace(b))
	}
	if _, err := os.Stat(filepath.Join(modDir, "modules.dep")); err != nil {
		return "", fmt.Errorf("depmod wrote no modules.dep in %s: %w", modDir, err)
	}
	size, err := modulesDiskSize(modDir)
	if err != nil {
		return "", err
	}
	uuid := uuid.NewString()
	err = writeFileSync(out, func(f *os.File) error {
		if err := f.Truncate(size); err != nil {
			return err
		}
		// No journal: the disk is only ever mounted read-only, so there is
		// nothing to replay. 4 KiB blocks whatever the size (mke2fs would
		// pick 1 KiB for a filesystem this small).
		cmd := exec.CommandContext(ctx, mkfs, "-q", "-F", "-b", "4096", "-m", "0",
			"-O", "^has_journal", "-U", uuid, "-L", ModulesDiskLabel,
			"-E", "root_owner=0:0", "-d", modDir, f.Name())
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("mkfs.ext4 -d %s: %w: %s", modDir, err, bytes.TrimSpace(b))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	// Shared by every VM of this kernel, attached read-only.
	return uuid, os.Chmod(out, 0o444)
}

// modulesDiskSize is the module tree's size in 4 KiB blocks (every file
// and directory rounded up) plus room for ext4's own metadata: inode
// tables, bitmaps and directory blocks.
func modulesDiskSize(modDir string) (int64, error) {
	const block = 4096
	var total, entries int64
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries++
		if d.Type().IsRegular() {
			st, err := d.Info()
			if err != nil {
				return err
			}
			total += (st.Size() + block - 1) / block * block
		} else {
			total += block
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size module tree: %w", err)
	}
	// One 256-byte inode per 16 KiB is mke2fs's default ratio; a tenth
	// more and 16 MiB cover it, the block group descriptors and slack.
	size := total + total/10 + entries*256 + 16<<20
	return (size + block - 1) / block * block, nil
}

// sbinDirs are where SbinTool looks when PATH has no such tool.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// SbinTool finds a tool that lives in /usr/sbin or /sbin, which a user's
// PATH often lacks, naming the Debian package that provides it when it is
// missing.
func SbinTool(name, pkg string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found; the kernel's module disk needs the %s package (apt-get install %s)", name, pkg, pkg)
}

// AddModulesDisk gives a kernel imported before module disks existed its
// modules.ext4: the package (opts.DebFile, else opts.Package, else the one
// kernel.json names) is fetched and unpacked again, and only the disk and
// kernel.json are added, each by rename — vmlinuz, vmlinux and
// modules.cpio stay in place for VMs starting meanwhile.
func AddModulesDisk(ctx context.Context, opts ImportOptions) (Info, error) {
	progress := steps(opts.Progress)
	info, err := Load(opts.Dir)
	if err != nil {
		return info, err
	}
	if HasModulesDisk(opts.Dir, info) {
		return info, nil
	}
	if opts.DebFile == "" && opts.Package == "" {
		if info.Package == "" {
			return info, errors.New("add module disk: kernel.json names no package to fetch")
		}
		opts.Package = info.Package
	}
	pkg, cleanup, err := unpack(ctx, opts, progress)
	if err != nil {
		return info, fmt.Errorf("add module disk: %w", err)
	}
	defer cleanup()
	if pkg.release != info.Release {
		return info, fmt.Errorf("add module disk: package %s is kernel %s, not %s", pkg.pkg, pkg.release, info.Release)
	}
	progress("building " + ModulesDiskFile + " (the whole module tree, for modprobe in the guest)")
	tmp := filepath.Join(opts.Dir, "."+ModulesDiskFile+".tmp")
	os.Remove(tmp) // a leftover of an interrupted upgrade
	uuid, err := buildModulesDisk(ctx, pkg.root, pkg.modDir, pkg.release, tmp)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(opts.Dir, ModulesDiskFile))
	}
	if err != nil {
		os.Remove(tmp)
		return info, fmt.Errorf("add module disk: %w", err)
	}
	info.ModulesUUID = uuid
	js, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return info, err
	}
	tmpInfo := filepath.Join(opts.Dir, "."+InfoFile+".tmp")
	os.Remove(tmpInfo)
	err = writeFileSync(tmpInfo, func(f *os.File) error {
		_, err := f.Write(append(js, '\n'))
		return err
	})
	if err == nil {
		err = os.Rename(tmpInfo, filepath.Join(opts.Dir, InfoFile))
	}
	if err != nil {
		os.Remove(tmpInfo)
		return info, fmt.Errorf("add module disk: %w", err)
	}
	syncDir(opts.Dir)
	return info, nil
}
