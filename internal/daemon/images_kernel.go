package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/store"
)

// pullKernel installs a kernel catalog entry: a sha256-pinned bundle, or a
// Debian package imported with apt (the existing import path).
func (d *Daemon) pullKernel(ctx context.Context, p api.PullKernelParams, progress progressFn) (store.Kernel, error) {
	cat, err := kernel.LoadCatalog(ctx, d.cfg.KernelCatalog, nil)
	if err != nil {
		return store.Kernel{}, err
	}
	e, ok := cat.Lookup(p.Ref)
	if !ok {
		// Kernels imported with apt need no catalog: a team catalog that
		// replaces the built-in one keeps the default kernel available.
		if builtin, err := kernel.LoadCatalog(ctx, "", nil); err == nil {
			if b, found := builtin.Lookup(p.Ref); found && b.URL == "" {
				e, ok = b, true
			}
		}
	}
	if !ok {
		return store.Kernel{}, notFound("kernel %q is not in the kernel catalog (%s): `banger kernel catalog` lists it", p.Ref, cat.Source)
	}
	if p.Name == "" {
		p.Name = e.Name
	}
	if !dnsLabel.MatchString(p.Name) {
		return store.Kernel{}, invalid("kernel name %q: use lowercase letters, digits and '-'", p.Name)
	}
	if k, err := d.store.GetKernel(ctx, p.Name); err == nil {
		return k, conflict("kernel %q already exists", k.Name)
	}
	if e.URL == "" {
		return d.importKernel(ctx, api.ImportKernelParams{Name: p.Name, Package: e.DebianPackage}, progress)
	}
	u, err := cat.BundleURL(e)
	if err != nil {
		return store.Kernel{}, err
	}
	dlDir := filepath.Join(d.paths.CacheDir, "downloads")
	if err := os.MkdirAll(dlDir, 0o700); err != nil {
		return store.Kernel{}, err
	}
	bundle := filepath.Join(dlDir, e.SHA256+".kernel.tar.zst")
	bar := newByteProgress(ctx, progress, api.StageDownload, "kernel "+e.Name)
	progress("kernel", "fetching "+u)
	if err := image.Fetch(ctx, image.Download{URL: u, SHA256: e.SHA256, Size: e.Size, MaxSize: 2 << 30, Dest: bundle, Progress: bar.update}); err != nil {
		return store.Kernel{}, err
	}
	defer os.Remove(bundle)
	bar.finish()
	dir := filepath.Join(d.paths.KernelDir(), p.Name+"-"+randHex(4))
	info, err := kernel.InstallBundle(bundle, dir, e.Release)
	if err == nil {
		err = kernel.EnsureELF(dir)
	}
	if err != nil {
		os.RemoveAll(dir)
		return store.Kernel{}, err
	}
	return d.publishKernel(ctx, store.Kernel{Name: p.Name, Dir: dir, Release: info.Release, Source: "catalog " + u, Digest: "sha256:" + e.SHA256})
}

// publishKernel registers a kernel installed in dir, removing the
// directory when the name was taken meanwhile.
func (d *Daemon) publishKernel(ctx context.Context, k store.Kernel) (store.Kernel, error) {
	if err := d.store.PutKernel(context.WithoutCancel(ctx), k); err != nil {
		os.RemoveAll(k.Dir)
		if errors.Is(err, store.ErrConflict) {
			return k, conflict("kernel %q was registered by another pull meanwhile; this one is discarded", k.Name)
		}
		return k, err
	}
	return d.store.GetKernel(ctx, k.Name)
}

// importKernelFiles registers a kernel from loose files.
func (d *Daemon) importKernelFiles(ctx context.Context, p api.ImportKernelFilesParams) (store.Kernel, error) {
	if !dnsLabel.MatchString(p.Name) {
		return store.Kernel{}, invalid("kernel name %q: use lowercase letters, digits and '-'", p.Name)
	}
	if !filepath.IsAbs(p.Kernel) || (p.Modules != "" && !filepath.IsAbs(p.Modules)) {
		return store.Kernel{}, invalid("kernel import: give absolute paths")
	}
	if p.Release == "" {
		return store.Kernel{}, invalid("kernel import --kernel: --release (the kernel's uname -r) is required")
	}
	if _, err := d.store.GetKernel(ctx, p.Name); err == nil {
		return store.Kernel{}, conflict("kernel %q already exists", p.Name)
	}
	dir := filepath.Join(d.paths.KernelDir(), p.Name+"-"+randHex(4))
	info, err := kernel.InstallFiles(dir, p.Kernel, p.Modules, p.Release)
	if err == nil {
		err = kernel.EnsureELF(dir)
	}
	if err != nil {
		os.RemoveAll(dir)
		return store.Kernel{}, invalid("kernel import: %v", err)
	}
	return d.publishKernel(ctx, store.Kernel{Name: p.Name, Dir: dir, Release: info.Release, Source: "files " + p.Kernel})
}

func (d *Daemon) kernelInfo(ctx context.Context, name string) (api.KernelInfo, error) {
	k, err := d.store.GetKernel(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return api.KernelInfo{}, notFound("no kernel named %q: `banger kernel ls` lists kernels", name)
	}
	if err != nil {
		return api.KernelInfo{}, err
	}
	info := api.KernelInfo{Kernel: kernelView(k), Digest: k.Digest}
	ents, _ := os.ReadDir(k.Dir)
	for _, e := range ents {
		info.Files = append(info.Files, e.Name())
	}
	info.UsedBy, err = d.store.VMsUsing(ctx, "kernel", name)
	return info, err
}

func (d *Daemon) deleteKernel(ctx context.Context, name string) error {
	k, err := d.store.GetKernel(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		var names []string
		if ks, lerr := d.store.ListKernels(ctx); lerr == nil {
			for _, k := range ks {
				names = append(names, k.Name)
			}
		}
		return notFound("no kernel named %q%s", name, didYouMean(name, names, "`banger kernel ls` lists kernels"))
	}
	if err != nil {
		return err
	}
	shared, err := d.store.DeleteKernel(ctx, name)
	var inUse *store.InUseError
	if errors.As(err, &inUse) {
		return conflict("kernel %s is used by VM(s) %s: delete them first", name, strings.Join(inUse.VMs, ", "))
	}
	if err != nil {
		return err
	}
	// Only directories banger made for this kernel go; an import cache
	// under ~/.cache may serve a re-import.
	if !shared && within(d.paths.KernelDir(), k.Dir) {
		return os.RemoveAll(k.Dir)
	}
	return nil
}

// within reports whether p is strictly inside dir.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
}

func (d *Daemon) kernelCatalog(ctx context.Context) (api.CatalogList, error) {
	cat, err := kernel.LoadCatalog(ctx, d.cfg.KernelCatalog, nil)
	if err != nil {
		return api.CatalogList{}, err
	}
	out := api.CatalogList{Source: cat.Source, Entries: []api.CatalogEntry{}}
	for _, e := range cat.Kernels {
		_, err := d.store.GetKernel(ctx, e.Name)
		out.Entries = append(out.Entries, api.CatalogEntry{Name: e.Name, Description: e.Description, URL: e.URL, SHA256: e.SHA256,
			Size: e.Size, Release: e.Release, Package: e.DebianPackage, Installed: err == nil})
	}
	return out, nil
}
