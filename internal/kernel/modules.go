package kernel

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// BootModule is a kernel module banger's guests need before the root
// filesystem exists (the agent loads them from the initramfs).
type BootModule struct {
	Name string
	// Optional modules are skipped when the kernel has neither the module
	// nor the feature built in; the rest are required.
	Optional bool
}

// BootModules lists what a banger guest needs, by module name. Their
// dependencies are found from each module's .modinfo and loaded first.
var BootModules = []BootModule{
	// Transport of every virtio device on QEMU microvm and Firecracker.
	{Name: "virtio_mmio"},
	// The base image, overlay, work and config disks.
	{Name: "virtio_blk"},
	// The NIC on the banger bridge.
	{Name: "virtio_net"},
	// virtio-serial: the agent channel where there is no vsock.
	{Name: "virtio_console"},
	// Entropy from the host: without it sshd waits for the pool (1-5 s).
	{Name: "virtio_rng"},
	// The root is an overlay of the read-only image and a per-VM disk.
	{Name: "overlay"},
	// Filesystem of every banger disk (built in on Debian's kernels).
	{Name: "ext4"},
	// vsock agent channel (Firecracker, QEMU with vhost-vsock).
	{Name: "vmw_vsock_virtio_transport", Optional: true},
}

// moduleName turns a file name ("virtio-rng.ko") into the kernel's module
// name ("virtio_rng"): the kernel treats '-' and '_' alike and reports
// dependencies with underscores.
func moduleName(file string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(file), ".ko"), "-", "_")
}

// compressedSuffixes are module compressions Debian kernels may use.
// Bookworm's 6.1 kernels are built with CONFIG_MODULE_COMPRESS_NONE.
var compressedSuffixes = []string{".ko.xz", ".ko.zst", ".ko.gz"}

// indexModules maps module names to .ko paths under modDir
// (lib/modules/<release>).
func indexModules(modDir string) (map[string]string, error) {
	idx := map[string]string{}
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for _, s := range compressedSuffixes {
			if strings.HasSuffix(p, s) {
				// finit_module could take these with
				// MODULE_INIT_COMPRESSED_FILE, but only if the kernel was
				// built to decompress that format; refuse rather than
				// ship modules the guest may not load.
				return fmt.Errorf("compressed module %s: only uncompressed .ko modules are supported", p)
			}
		}
		if strings.HasSuffix(p, ".ko") {
			n := moduleName(p)
			if prev, dup := idx[n]; dup {
				return fmt.Errorf("module %s found twice: %s and %s", n, prev, p)
			}
			idx[n] = p
		}
		return nil
	})
	return idx, err
}

// readBuiltin reads modules.builtin (one "kernel/.../name.ko" per line):
// features compiled into the kernel that need no module.
func readBuiltin(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out[moduleName(l)] = true
		}
	}
	return out, sc.Err()
}

// modinfoDepends returns the module names in the depends= field of a .ko's
// .modinfo ELF section (NUL-separated key=value strings). This is what
// depmod reads to build modules.dep, which the .deb does not ship.
func modinfoDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo of %s: %w", path, err)
	}
	var deps []string
	for _, kv := range bytes.Split(data, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, strings.ReplaceAll(d, "-", "_"))
			}
		}
	}
	return deps, nil
}

// resolution is the outcome of resolveModules.
type resolution struct {
	Order   []string // module names, dependencies first
	Builtin []string // requested modules the kernel has built in
	Missing []string // optional modules the kernel lacks entirely
}

// resolveModules orders the wanted modules and all their dependencies so
// each comes after everything it depends on (depth-first post-order, which
// keeps the wanted list's order where dependencies allow). deps is
// modinfoDepends in production and a fake in tests.
func resolveModules(want []BootModule, available map[string]string, builtin map[string]bool, deps func(path string) ([]string, error)) (resolution, error) {
	var res resolution
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " -> "))
		}
		path, ok := available[name]
		if !ok {
			return fmt.Errorf("module %s (needed by %s) not found in the kernel package", name, strings.Join(chain, " -> "))
		}
		state[name] = visiting
		ds, err := deps(path)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if builtin[d] {
				continue
			}
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = done
		res.Order = append(res.Order, name)
		return nil
	}
	for _, m := range want {
		switch _, have := available[m.Name]; {
		case builtin[m.Name]:
			res.Builtin = append(res.Builtin, m.Name)
		case have:
			if err := visit(m.Name, nil); err != nil {
				return res, err
			}
		case m.Optional:
			res.Missing = append(res.Missing, m.Name)
		default:
			return res, errors.New("kernel has no " + m.Name + " (neither built in nor a module)")
		}
	}
	return res, nil
}
