package artifacts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/kernel"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
	"github.com/banger-dev/banger/internal/suggest"
)

// pullKernel installs a kernel catalog entry: a sha256-pinned bundle, or a
// Debian package imported with apt (the existing import path).
func (s *Service) pullKernel(ctx context.Context, p api.PullKernelParams, r progress.Reporter) (store.Kernel, error) {
	cat, err := kernel.LoadCatalog(ctx, s.cfg.KernelCatalog, nil)
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
		return store.Kernel{}, api.NotFoundf("kernel %q is not in the kernel catalog (%s): `banger kernel catalog` lists it", p.Ref, cat.Source)
	}
	if p.Name == "" {
		p.Name = e.Name
	}
	if !dnsLabel.MatchString(p.Name) {
		return store.Kernel{}, api.Invalidf("kernel name %q: use lowercase letters, digits and '-'", p.Name)
	}
	if k, err := s.store.GetKernel(ctx, p.Name); err == nil {
		return k, api.Conflictf("kernel %q already exists", k.Name)
	}
	if e.URL == "" {
		return s.importKernel(ctx, api.ImportKernelParams{Name: p.Name, Package: e.DebianPackage}, nil, r)
	}
	u, err := cat.BundleURL(e)
	if err != nil {
		return store.Kernel{}, err
	}
	dlDir := filepath.Join(s.paths.CacheDir, "downloads")
	if err := os.MkdirAll(dlDir, 0o700); err != nil {
		return store.Kernel{}, err
	}
	bundle := filepath.Join(dlDir, e.SHA256+".kernel.tar.zst")
	bar := progress.NewBytes(r, api.StageDownload, "kernel "+e.Name)
	progress.Stage(r, "kernel", "fetching "+u)
	if err := image.Fetch(ctx, image.Download{URL: u, SHA256: e.SHA256, Size: e.Size, MaxSize: 2 << 30, Dest: bundle, Progress: bar.Update}); err != nil {
		return store.Kernel{}, err
	}
	defer os.Remove(bundle)
	bar.Finish()
	dir := filepath.Join(s.paths.KernelDir(), p.Name+"-"+randHex(4))
	info, err := kernel.InstallBundle(bundle, dir, e.Release)
	if err == nil {
		err = kernel.EnsureELF(dir)
	}
	if err != nil {
		os.RemoveAll(dir)
		return store.Kernel{}, err
	}
	return s.publishKernel(ctx, store.Kernel{Name: p.Name, Dir: dir, Release: info.Release, Source: "catalog " + u, Digest: "sha256:" + e.SHA256})
}

// publishKernel registers a kernel installed in dir, removing the
// directory when the name was taken meanwhile.
func (s *Service) publishKernel(ctx context.Context, k store.Kernel) (store.Kernel, error) {
	if err := s.store.PutKernel(context.WithoutCancel(ctx), k); err != nil {
		os.RemoveAll(k.Dir)
		if errors.Is(err, store.ErrConflict) {
			return k, api.Conflictf("kernel %q was registered by another pull meanwhile; this one is discarded", k.Name)
		}
		return k, err
	}
	return s.store.GetKernel(ctx, k.Name)
}

func (s *Service) kernelInfo(ctx context.Context, name string) (api.KernelInfo, error) {
	k, err := s.store.GetKernel(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return api.KernelInfo{}, api.NotFoundf("no kernel named %q: `banger kernel ls` lists kernels", name)
	}
	if err != nil {
		return api.KernelInfo{}, err
	}
	info := api.KernelInfo{Kernel: KernelView(k), Digest: k.Digest}
	ents, _ := os.ReadDir(k.Dir)
	for _, e := range ents {
		info.Files = append(info.Files, e.Name())
	}
	info.UsedBy, err = s.store.VMsUsing(ctx, "kernel", name)
	return info, err
}

func (s *Service) deleteKernel(ctx context.Context, name string) error {
	k, err := s.store.GetKernel(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		var names []string
		if ks, lerr := s.store.ListKernels(ctx); lerr == nil {
			for _, k := range ks {
				names = append(names, k.Name)
			}
		}
		return api.NotFoundf("no kernel named %q%s", name, suggest.Hint(name, names, "`banger kernel ls` lists kernels"))
	}
	if err != nil {
		return err
	}
	shared, err := s.store.DeleteKernel(ctx, name)
	var inUse *store.InUseError
	if errors.As(err, &inUse) {
		return api.Conflictf("kernel %s is used by VM(s) %s: delete them first", name, strings.Join(inUse.VMs, ", "))
	}
	if err != nil {
		return err
	}
	// Only directories banger made for this kernel go; an import cache
	// under ~/.cache may serve a re-import.
	if !shared && within(s.paths.KernelDir(), k.Dir) {
		return os.RemoveAll(k.Dir)
	}
	return nil
}

func (s *Service) kernelCatalog(ctx context.Context) (api.CatalogList, error) {
	cat, err := kernel.LoadCatalog(ctx, s.cfg.KernelCatalog, nil)
	if err != nil {
		return api.CatalogList{}, err
	}
	out := api.CatalogList{Source: cat.Source, Entries: []api.CatalogEntry{}}
	for _, e := range cat.Kernels {
		_, err := s.store.GetKernel(ctx, e.Name)
		out.Entries = append(out.Entries, api.CatalogEntry{Name: e.Name, Description: e.Description, URL: e.URL, SHA256: e.SHA256,
			Size: e.Size, Release: e.Release, Package: e.DebianPackage, Installed: err == nil})
	}
	return out, nil
}
