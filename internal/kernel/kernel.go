// Package kernel owns guest kernels on the host: importing Debian's cloud
// kernel package (vmlinuz plus the virtio/overlay/vsock modules a banger
// guest needs before its root exists, in load order, as a cpio archive the
// initramfs builder appends, and the whole module tree as an ext4 disk the
// guest mounts at /lib/modules/<release>) and reading back what was
// imported.
package kernel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/progress"
)

// Files inside an imported kernel directory.
const (
	VmlinuzFile = "vmlinuz"      // the kernel as packaged (bzImage)
	ModulesFile = "modules.cpio" // newc archive of proto.ModulesDir
	InfoFile    = "kernel.json"  // Info
)

// CloudMetaPackage is Debian's package that always depends on the current
// cloud kernel.
const CloudMetaPackage = "linux-image-cloud-amd64"

// Info describes an imported kernel (kernel.json).
type Info struct {
	Release string `json:"release"` // uname -r, e.g. 6.1.0-56-cloud-amd64
	Package string `json:"package"` // e.g. linux-image-6.1.0-56-cloud-amd64
	Version string `json:"version,omitempty"`
	// Modules are the file names in modules.cpio, in load order.
	Modules []string `json:"modules"`
	// Builtin are requested modules this kernel has compiled in.
	Builtin []string `json:"builtin,omitempty"`
	// ModulesUUID is the ext4 UUID of ModulesDiskFile; empty when the
	// kernel has none (catalog bundles, loose files, older imports).
	ModulesUUID string    `json:"modules_uuid,omitempty"`
	Created     time.Time `json:"created"`
}

// ImportOptions configures ImportDebianCloud.
type ImportOptions struct {
	Dir      string            // destination directory, replaced atomically
	Package  string            // default: CloudMetaPackage's current dependency
	DebFile  string            // import this local .deb instead of downloading
	Progress progress.Reporter // stage "kernel" steps; may be nil
}

// Load reads the kernel.json of an imported kernel directory.
func Load(dir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		return info, fmt.Errorf("load kernel: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("load kernel %s: %w", dir, err)
	}
	return info, nil
}

// steps reports an import's steps to r as "kernel" stage events.
func steps(r progress.Reporter) func(string) {
	return func(msg string) { progress.Stage(r, "kernel", msg) }
}

// ImportDebianCloud imports a Debian cloud kernel into opts.Dir.
func ImportDebianCloud(ctx context.Context, opts ImportOptions) (Info, error) {
	var info Info
	progress := steps(opts.Progress)
	if opts.Dir == "" {
		return info, errors.New("import kernel: no destination directory")
	}
	tree, cleanup, err := unpack(ctx, opts, progress)
	if err != nil {
		return info, fmt.Errorf("import kernel: %w", err)
	}
	defer cleanup()
	info.Package, info.Version = tree.pkg, tree.version
	vmlinuz, release, modDir := tree.vmlinuz, tree.release, tree.modDir
	info.Release = release
	available, err := indexModules(modDir)
	if err != nil {
		return info, fmt.Errorf("import kernel: %w", err)
	}
	builtin, err := readBuiltin(filepath.Join(modDir, "modules.builtin"))
	if err != nil {
		return info, fmt.Errorf("import kernel: %w", err)
	}
	res, err := resolveModules(BootModules, available, builtin, modinfoDepends)
	if err != nil {
		return info, fmt.Errorf("import kernel %s: %w", release, err)
	}
	for _, m := range res.Missing {
		progress("kernel has no " + m + "; skipped (optional)")
	}
	files := make([]moduleFile, 0, len(res.Order))
	for _, n := range res.Order {
		files = append(files, moduleFile{Name: filepath.Base(available[n]), Path: available[n]})
		info.Modules = append(info.Modules, filepath.Base(available[n]))
	}
	info.Builtin = res.Builtin
	info.Created = time.Now().UTC().Truncate(time.Second)
	progress(fmt.Sprintf("kernel %s: modules %s", release, strings.Join(res.Order, " ")))

	err = replaceDir(opts.Dir, func(tmp string) error {
		if err := copyFile(vmlinuz, filepath.Join(tmp, VmlinuzFile)); err != nil {
			return err
		}
		if err := writeFileSync(filepath.Join(tmp, ModulesFile), func(f *os.File) error {
			return writeModulesCPIO(f, files, info.Created)
		}); err != nil {
			return err
		}
		progress("building " + ModulesDiskFile + " (the whole module tree, for modprobe in the guest)")
		uuid, err := buildModulesDisk(ctx, tree.root, modDir, release, filepath.Join(tmp, ModulesDiskFile))
		if err != nil {
			return err
		}
		info.ModulesUUID = uuid
		js, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return err
		}
		return writeFileSync(filepath.Join(tmp, InfoFile), func(f *os.File) error {
			_, err := f.Write(append(js, '\n'))
			return err
		})
	})
	if err != nil {
		return info, fmt.Errorf("import kernel: %w", err)
	}
	return info, nil
}

// unpackedPackage is a kernel .deb unpacked by dpkg -x.
type unpackedPackage struct {
	root             string // the unpacked tree
	pkg, version     string // control fields, informational
	vmlinuz, release string // boot/vmlinuz-<release>
	modDir           string // lib/modules/<release> inside root
}

// unpack checks the tools an import needs, downloads the package opts
// names (or takes opts.DebFile) and unpacks it into a temporary
// directory, which cleanup removes.
func unpack(ctx context.Context, opts ImportOptions, progress func(string)) (u unpackedPackage, cleanup func(), err error) {
	if err := needTools(opts.DebFile == ""); err != nil {
		return u, nil, err
	}
	work, err := os.MkdirTemp("", "banger-kernel-*")
	if err != nil {
		return u, nil, err
	}
	cleanup = func() { os.RemoveAll(work) }
	if u, err = unpackIn(ctx, work, opts, progress); err != nil {
		cleanup()
		return u, nil, err
	}
	return u, cleanup, nil
}

func unpackIn(ctx context.Context, work string, opts ImportOptions, progress func(string)) (unpackedPackage, error) {
	var u unpackedPackage
	var err error
	deb := opts.DebFile
	if deb == "" {
		pkg := opts.Package
		// The metapackage itself holds no kernel, only the dependency.
		if pkg == "" || pkg == CloudMetaPackage {
			if pkg, err = resolveCloudPackage(ctx); err != nil {
				return u, err
			}
		}
		progress("downloading " + pkg)
		if deb, err = download(ctx, pkg, filepath.Join(work, "deb")); err != nil {
			return u, err
		}
	}
	u.pkg, u.version = debField(ctx, deb, "Package"), debField(ctx, deb, "Version")
	progress("unpacking " + filepath.Base(deb))
	u.root = filepath.Join(work, "tree")
	if out, err := exec.CommandContext(ctx, "dpkg", "-x", deb, u.root).CombinedOutput(); err != nil {
		return u, fmt.Errorf("dpkg -x %s: %w: %s", deb, err, bytes.TrimSpace(out))
	}
	if u.vmlinuz, u.release, err = findVmlinuz(u.root); err != nil {
		return u, err
	}
	if u.modDir, err = findModuleDir(u.root, u.release); err != nil {
		return u, err
	}
	return u, checkUnpacked(u) // links.go
}

// needTools checks for the Debian tools the import shells out to.
func needTools(downloading bool) error {
	tools := []string{"dpkg", "dpkg-deb"}
	if downloading {
		tools = append(tools, "apt-get", "apt-cache")
	}
	// The module disk: depmod's indexes, then the filesystem.
	for _, t := range [][2]string{{"depmod", "kmod"}, {"mkfs.ext4", "e2fsprogs"}} {
		if _, err := SbinTool(t[0], t[1]); err != nil {
			return err
		}
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			pkg := "dpkg"
			if strings.HasPrefix(t, "apt") {
				pkg = "apt"
			}
			return fmt.Errorf("%s not found; importing a Debian kernel package needs the %s package (apt-get install %s)", t, pkg, pkg)
		}
	}
	return nil
}

// resolveCloudPackage asks apt which concrete kernel package the cloud
// metapackage currently depends on, so the import records (and later
// re-imports compare) a real kernel release, not a moving name.
func resolveCloudPackage(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", CloudMetaPackage).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w (is the host's package list current? try apt-get update)", CloudMetaPackage, err)
	}
	if p := parseDepends(string(out)); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%s depends on no linux-image package", CloudMetaPackage)
}

// parseDepends picks the first "Depends: linux-image-..." line of
// apt-cache depends output.
func parseDepends(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(strings.TrimLeft(sc.Text(), " |"))
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1]
		}
	}
	return ""
}

// download fetches pkg's .deb into dir with apt-get download, which
// needs no root and verifies the package against the host's signed lists.
func download(ctx context.Context, pkg, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %w: %s", pkg, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s produced %d .deb files", pkg, len(debs))
	}
	return debs[0], nil
}

// debField reads one control field of a .deb; informational only.
func debField(ctx context.Context, deb, field string) string {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--field", deb, field).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// findVmlinuz returns boot/vmlinuz-<release> of an unpacked kernel package.
func findVmlinuz(tree string) (path, release string, err error) {
	m, _ := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
	if len(m) != 1 {
		return "", "", fmt.Errorf("expected one boot/vmlinuz-* in the package, found %d", len(m))
	}
	return m[0], strings.TrimPrefix(filepath.Base(m[0]), "vmlinuz-"), nil
}

// findModuleDir finds lib/modules/<release> (usr/lib on newer, merged-/usr
// packages).
func findModuleDir(tree, release string) (string, error) {
	for _, d := range []string{"lib/modules", "usr/lib/modules"} {
		p := filepath.Join(tree, d, release)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("package has no lib/modules/%s", release)
}
