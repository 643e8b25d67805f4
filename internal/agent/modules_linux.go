package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// loadModules loads the initramfs's kernel modules in the listed order
// (dependencies first), except those already loaded. A module that fails is
// logged and skipped: it may be built in, or not needed on this VMM; a
// missing disk or NIC is reported later with the full picture.
func loadModules(log *slog.Logger) {
	data, err := os.ReadFile(proto.ModulesOrder)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("no kernel modules to load")
		return
	}
	if err != nil {
		log.Warn("read module list", "err", err)
		return
	}
	loaded, failed := 0, 0
	for _, line := range strings.Split(string(data), "\n") {
		name := strings.TrimSpace(line)
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		if moduleLoaded(moduleOf(name)) {
			continue
		}
		if err := loadModule(filepath.Join(proto.ModulesDir, name)); err != nil {
			log.Warn("load module", "module", name, "err", err)
			failed++
			continue
		}
		loaded++
	}
	log.Info("kernel modules loaded", "loaded", loaded, "failed", failed)
}

// moduleOf is the kernel's name of the module in a module list entry
// ("kernel/drivers/block/virtio-blk.ko" → "virtio_blk").
func moduleOf(entry string) string {
	base := filepath.Base(entry)
	if i := strings.Index(base, ".ko"); i > 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// moduleLoaded reports whether the kernel has the module already.
func moduleLoaded(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/module", name, "initstate"))
	return err == nil
}

// loadModule hands one module file to the kernel. Compressed modules are
// decompressed by the kernel itself (CONFIG_MODULE_DECOMPRESS), since the
// agent carries no xz or zstd decoder.
func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if compressedModule(path) {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return nil
	case flags != 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)):
		return fmt.Errorf("%w (kernel cannot decompress modules: ship them uncompressed)", err)
	default:
		return err
	}
}

func compressedModule(path string) bool {
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(path, ext) {
			return true
		}
	}
	return false
}
