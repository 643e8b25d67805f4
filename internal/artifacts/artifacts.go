package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/initramfs"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// BootArtifacts returns the image and the kernel to boot it with,
// provisioning what is missing so a first run just works: the image is
// pulled when it is a catalog name or an explicit OCI reference (a bare
// unknown word is "not found" rather than a Docker Hub pull), and the
// kernel — the image's own, else the default — comes from the kernel
// catalog.
func (s *Service) BootArtifacts(ctx context.Context, imageName string, r progress.Reporter) (store.Image, store.Kernel, error) {
	img, err := s.findImage(ctx, imageName)
	if errors.Is(err, store.ErrNotFound) {
		img, err = s.autoPull(ctx, imageName, r)
	}
	if err != nil {
		return img, store.Kernel{}, err
	}
	kname := img.Kernel
	if kname == "" {
		kname = s.cfg.DefaultKernel
	}
	kern, err := s.ensureKernel(ctx, kname, r)
	return img, kern, err
}

// autoPull provisions an image on first use, with progress.
func (s *Service) autoPull(ctx context.Context, x string, r progress.Reporter) (store.Image, error) {
	cat, err := image.LoadCatalog(ctx, s.cfg.ImageCatalog, nil)
	if err != nil {
		return store.Image{}, err
	}
	if _, ok := cat.Lookup(x); !ok && !looksLikeRef(x) && x != config.DefaultImageName {
		return store.Image{}, api.NotFoundf("image %q not found: `banger image ls` lists images, `banger image catalog` what can be pulled, `banger image pull %s` pulls it from Docker Hub", x, x)
	}
	progress.Stage(r, "image", x+" is not here yet: pulling it")
	im, notes, err := s.pullImage(ctx, api.PullImageParams{Ref: x}, r)
	for _, n := range notes {
		progress.Stage(r, "note", n)
	}
	return im, err
}

// ensureKernel returns the kernel named k, pulling it from the kernel
// catalog when it is not registered yet.
func (s *Service) ensureKernel(ctx context.Context, k string, r progress.Reporter) (store.Kernel, error) {
	kern, err := s.store.GetKernel(ctx, k)
	if err == nil {
		s.upgradeKernelModules(ctx, kern, r)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return kern, err
	}
	kern, err = s.pullKernel(ctx, api.PullKernelParams{Ref: k}, r)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
		return kern, api.NotFoundf("kernel %q not found: `banger kernel ls` lists kernels, `banger kernel catalog` what can be pulled, `banger kernel import` adds one", k)
	}
	return kern, err
}

// buildImage builds a golden Debian image from recipe into the cache
// (reusing a cached build of the same recipe) and registers it.
func (s *Service) buildImage(ctx context.Context, p api.BuildImageParams, recipe *image.Recipe, r progress.Reporter) (store.Image, error) {
	if p.Name == "" {
		p.Name = config.DefaultImageName
	}
	if !dnsLabel.MatchString(p.Name) {
		return store.Image{}, api.Invalidf("image name %q: use lowercase letters, digits and '-'", p.Name)
	}
	s.provisionMu.Lock()
	defer s.provisionMu.Unlock()
	if im, err := s.store.GetImage(ctx, p.Name); err == nil {
		return im, api.Conflictf("image %q already exists", im.Name)
	}
	out := filepath.Join(s.paths.CacheDir, "images", recipe.Key+".ext4")
	if _, err := os.Stat(out); err != nil || p.Force {
		if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
			return store.Image{}, err
		}
		progress.Stage(r, "image", "building "+p.Name+" from Debian packages with mmdebstrap ("+buildTime(recipe)+")")
		logf, err := os.Create(filepath.Join(filepath.Dir(out), recipe.Key+".log"))
		if err != nil {
			return store.Image{}, err
		}
		err = image.BuildGolden(ctx, image.BuildOptions{OutPath: out, Suite: "bookworm", Recipe: recipe,
			Progress: r, Log: logf})
		logf.Close()
		if err != nil {
			return store.Image{}, fmt.Errorf("image %s: %w (log: %s)", p.Name, err, logf.Name()) // "build golden image: …"
		}
	} else {
		progress.Stage(r, "image", "using cached build "+out)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return store.Image{}, err
	}
	uuid, _ := image.ReadExt4UUID(out)
	im := store.Image{Name: p.Name, Path: out, UUID: uuid, SizeBytes: fi.Size(), Source: "mmdebstrap " + recipe.Key,
		Init: "/sbin/init", HasSSHD: true}
	if err := s.store.PutImage(ctx, im); err != nil {
		return im, err
	}
	return s.store.GetImage(ctx, p.Name)
}

// importKernel imports Debian's cloud kernel (or a given package, or the
// .deb read from deb) into the cache and registers it.
func (s *Service) importKernel(ctx context.Context, p api.ImportKernelParams, deb io.Reader, r progress.Reporter) (kern store.Kernel, err error) {
	if p.Name == "" {
		p.Name = config.DefaultKernelName
	}
	if !dnsLabel.MatchString(p.Name) {
		return store.Kernel{}, api.Invalidf("kernel name %q: use lowercase letters, digits and '-'", p.Name)
	}
	s.provisionMu.Lock()
	defer s.provisionMu.Unlock()
	if k, err := s.store.GetKernel(ctx, p.Name); err == nil {
		return k, api.Conflictf("kernel %q already exists", k.Name)
	}
	key := p.Package
	if p.DebFile != "" {
		key = "deb-" + strings.TrimSuffix(filepath.Base(p.DebFile), ".deb")
	}
	if key == "" {
		pkg, err := kernel.ResolvePackage(ctx, "")
		if err != nil {
			return store.Kernel{}, fmt.Errorf("import kernel: %w", err)
		}
		key, p.Package = pkg, pkg
	}
	dir := filepath.Join(s.paths.CacheDir, "kernels", key)
	info, err := kernel.Load(dir)
	if p.DebFile != "" && (err != nil || !kernel.HasModulesDisk(dir, info)) {
		// The .deb is needed: it comes from the client.
		label := p.DebFile
		tmp, cleanup, rerr := s.receiveTemp(ctx, deb, p.Size, "deb", r)
		if rerr != nil {
			return store.Kernel{}, api.Invalidf("kernel import: %v; nothing was imported", rerr)
		}
		defer cleanup()
		p.DebFile = tmp
		defer func() { err = relabel(err, tmp, label) }()
	}
	if err == nil && !kernel.HasModulesDisk(dir, info) {
		// An import from before module disks: the cache gains one.
		progress.Stage(r, "kernel", "cached import "+dir+" has no "+kernel.ModulesDiskFile+": adding it")
		info, err = kernel.AddModulesDisk(ctx, kernel.ImportOptions{Dir: dir, Package: p.Package, DebFile: p.DebFile,
			Progress: r})
		if err != nil {
			return store.Kernel{}, fmt.Errorf("import kernel: %w", err)
		}
	} else if err != nil {
		progress.Stage(r, "kernel", "importing "+key)
		info, err = kernel.ImportDebianCloud(ctx, kernel.ImportOptions{Dir: dir, Package: p.Package, DebFile: p.DebFile,
			Progress: r})
		if err != nil {
			return store.Kernel{}, err // says "import kernel: …" itself
		}
	} else {
		progress.Stage(r, "kernel", "using cached import "+dir)
	}
	progress.Stage(r, "kernel", "extracting the ELF vmlinux (for firecracker)")
	if err := kernel.EnsureELF(dir); err != nil {
		return store.Kernel{}, err
	}
	k := store.Kernel{Name: p.Name, Dir: dir, Release: info.Release, Source: key}
	if err := s.store.PutKernel(ctx, k); err != nil {
		return k, err
	}
	return s.store.GetKernel(ctx, p.Name)
}

// Initrd returns the initramfs for a kernel and the current agent:
// the agent as /init plus the kernel's modules, cached by both.
func (s *Service) Initrd(ctx context.Context, k store.Kernel, r progress.Reporter) (string, error) {
	agent, err := s.agentBinary()
	if err != nil {
		return "", err
	}
	sum, err := image.FileSHA256(agent)
	if err != nil {
		return "", err
	}
	out := filepath.Join(s.paths.CacheDir, "initrd", k.Name+"-"+k.Release+"-"+sum[:12]+".cpio")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	progress.Stage(r, "initrd", "building initramfs for "+k.Release)
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return "", err
	}
	if err := initramfs.BuildFile(ctx, out, agent, filepath.Join(k.Dir, "modules.cpio")); err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	s.pruneInitrds(out, k)
	return out, nil
}

// initrdKeep is how long an initramfs built for another agent is kept.
const initrdKeep = time.Hour

// pruneInitrds removes this kernel's initramfs files built for other
// agents an hour or more ago: this daemon never boots them again (an
// upgrade would otherwise leave one per version). A younger one may be
// another daemon's sharing the cache (two builds under test at once),
// which boots it or captures a warm-start template from it later.
func (s *Service) pruneInitrds(keep string, k store.Kernel) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(keep), k.Name+"-"+k.Release+"-"+strings.Repeat("[0-9a-f]", 12)+".cpio"))
	for _, p := range old {
		if fi, err := os.Stat(p); err != nil || time.Since(fi.ModTime()) < initrdKeep {
			continue
		}
		if p != keep {
			if err := os.Remove(p); err != nil {
				s.log.Warn("prune initramfs", "path", p, "err", err)
			}
		}
	}
}
