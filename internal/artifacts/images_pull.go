package artifacts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// agentNote is said on every pull: users of other tools expect to have to
// install something into the image for the host to control it.
const agentNote = "nothing is added to the image: banger-agent runs from the initramfs (as PID 1 when the image has no init)"

// pullImage pulls p.Ref — a catalog name, else an OCI reference — and
// registers it. Pulls run in parallel (no daemon-wide lock): each writes
// its own temporary file, and the name is claimed only when the image is
// complete, by the store's unique insert, so of two pulls of one name
// exactly one wins and the other removes its file. A failed pull leaves
// no row and no image file.
func (s *Service) pullImage(ctx context.Context, p api.PullImageParams, r progress.Reporter) (store.Image, []string, error) {
	if p.Ref == "" {
		return store.Image{}, nil, api.Invalidf("image pull: give a catalog name or an OCI reference (`banger image catalog` lists the catalog)")
	}
	cat, err := image.LoadCatalog(ctx, s.cfg.ImageCatalog, nil)
	if err != nil {
		return store.Image{}, nil, err
	}
	entry, inCatalog := cat.Lookup(p.Ref)
	if !inCatalog {
		// A team catalog replaces the built-in one, but images built here
		// (the golden default) need no catalog and stay available.
		if builtin, err := image.LoadCatalog(ctx, "", nil); err == nil {
			if e, ok := builtin.Lookup(p.Ref); ok && e.Build != "" {
				entry, inCatalog = e, true
			}
		}
	}
	if p.Name == "" {
		if inCatalog {
			p.Name = entry.Name
		} else if p.Name, err = nameFromRef(p.Ref); err != nil {
			return store.Image{}, nil, err
		}
	}
	if !dnsLabel.MatchString(p.Name) {
		return store.Image{}, nil, api.Invalidf("image name %q: use lowercase letters, digits and '-' (--name sets it)", p.Name)
	}
	if im, err := s.store.GetImage(ctx, p.Name); err == nil {
		return im, nil, api.Conflictf("image %q already exists (from %s): `banger image delete %s` first, or pull with --name", im.Name, im.Source, im.Name)
	}
	switch {
	case inCatalog && entry.Build != "":
		recipe, _ := image.LookupRecipe(entry.Build) // the catalog checked it
		im, err := s.buildImage(ctx, api.BuildImageParams{Name: p.Name}, recipe, r)
		return im, nil, err
	case inCatalog && entry.Ref != "":
		progress.Stage(r, "pull", fmt.Sprintf("%s is %s in the %s catalog", entry.Name, entry.Ref, cat.Source))
		return s.pullOCI(ctx, p.Name, entry.Ref, entry.Kernel, r)
	case inCatalog:
		return s.pullBundle(ctx, cat, entry, p.Name, r)
	}
	return s.pullOCI(ctx, p.Name, p.Ref, "", r)
}

// nameFromRef derives an image name from an OCI reference:
// registry.example/team/app:v2 → app-v2 (":latest" adds nothing).
func nameFromRef(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", api.Invalidf("%q is not in the image catalog, and not an OCI reference: %v", ref, err)
	}
	repo := r.Context().RepositoryStr()
	n := repo[strings.LastIndex(repo, "/")+1:]
	if t, ok := r.(name.Tag); ok && t.TagStr() != "latest" {
		n += "-" + t.TagStr()
	}
	n = strings.Trim(invalidNameChars.ReplaceAllString(strings.ToLower(n), "-"), "-")
	if len(n) > 63 {
		n = strings.Trim(n[:63], "-")
	}
	if n == "" {
		return "", api.Invalidf("cannot derive an image name from %q: give --name", ref)
	}
	return n, nil
}

var invalidNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// looksLikeRef tells an explicit OCI reference (a registry path, a tag or
// a digest) from a bare word, which `vm create --image` treats as a name
// rather than pulling docker.io/library/WORD behind the user's back.
func looksLikeRef(s string) bool { return strings.ContainsAny(s, "/:@") }

// newImageFile is a fresh temporary file in the image store; publish
// renames it into place.
func (s *Service) newImageFile(name string) (*os.File, error) {
	if err := os.MkdirAll(s.paths.ImageDir(), 0o700); err != nil {
		return nil, err
	}
	return os.CreateTemp(s.paths.ImageDir(), "."+name+".pull-*")
}

// publish moves a complete image file into place and registers it; on any
// failure (including losing a name race) the file is removed.
func (s *Service) publish(ctx context.Context, tmp *os.File, im store.Image) (store.Image, error) {
	final := filepath.Join(s.paths.ImageDir(), im.Name+"-"+randHex(4)+".ext4")
	err := tmp.Chmod(0o644)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return im, err
	}
	st, err := os.Stat(final)
	if err != nil {
		os.Remove(final)
		return im, err
	}
	im.Path, im.SizeBytes = final, st.Size()
	im.UUID, _ = image.ReadExt4UUID(final)
	if err := s.store.PutImage(context.WithoutCancel(ctx), im); err != nil {
		os.Remove(final)
		if errors.Is(err, store.ErrConflict) {
			return im, api.Conflictf("image %q was registered by another pull or build meanwhile; this one is discarded", im.Name)
		}
		return im, err
	}
	return s.store.GetImage(ctx, im.Name)
}

// discardTemp removes a temporary image file unless publish took it.
func discardTemp(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

func initOf(init string) string {
	if init == "" {
		return store.InitNone
	}
	return init
}

func (s *Service) pullOCI(ctx context.Context, imgName, ref, kernelName string, r progress.Reporter) (store.Image, []string, error) {
	tmp, err := s.newImageFile(imgName)
	if err != nil {
		return store.Image{}, nil, err
	}
	defer discardTemp(tmp)
	blobDir := filepath.Join(s.paths.CacheDir, "blobs")
	var notes []string
	progress.Stage(r, "pull", "resolving "+ref+" for "+image.DefaultPlatform)
	res, digests, err := image.PullOCI(ctx, image.OCIOptions{Ref: ref, BlobDir: blobDir,
		Flatten:  image.FlattenOptions{Note: func(m string) { notes = append(notes, m) }},
		Progress: r}, tmp)
	// Blobs stay for a re-run to resume from, unless the pull succeeded
	// or failed in a way a re-run would repeat.
	var fe *image.FlattenError
	image.ReleaseBlobs(blobDir, digests, err == nil || (errors.As(err, &fe) && ctx.Err() == nil))
	if err != nil {
		if ctx.Err() != nil {
			return store.Image{}, nil, fmt.Errorf("pull %s interrupted: downloaded layers are kept, and pulling again resumes from them", ref)
		}
		return store.Image{}, nil, err
	}
	if kernelName != "" {
		if _, err := s.ensureKernel(ctx, kernelName, r); err != nil {
			return store.Image{}, nil, err
		}
	}
	rt := store.ImageRuntime(res.Runtime)
	notes = append(notes, describeContents(res.Init, res.InitTarget, res.HasSSHD)...)
	notes = append(notes, describeRuntime(rt)...)
	im, err := s.publish(ctx, tmp, store.Image{Name: imgName, Source: "oci " + ref, Kernel: kernelName,
		Init: initOf(res.Init), HasSSHD: res.HasSSHD, Digest: res.Digest, Ref: res.Canonical, Runtime: rt})
	return im, notes, err
}

// describeContents says what booting the image will be like.
func describeContents(init, target string, sshd bool) []string {
	notes := []string{agentNote}
	if init == "" {
		notes = append(notes, "no /sbin/init: banger-agent stays PID 1; `banger vm run -- CMD` works")
	} else if target != "" && target != init {
		notes = append(notes, "init: "+init+" → "+target)
	} else {
		notes = append(notes, "init: "+init)
	}
	if !sshd {
		notes = append(notes, "no sshd: `banger vm ssh` will not work on this image; use `banger vm run` or `banger vm exec`")
	}
	return notes
}

// describeRuntime says what `vm run` takes from the image's config.
func describeRuntime(rt store.ImageRuntime) []string {
	if argv := defaultCommand(rt); len(argv) > 0 {
		return []string{fmt.Sprintf("default command: %q (`banger vm run` without a command runs it)", argv)}
	}
	return nil
}

func (s *Service) pullBundle(ctx context.Context, cat *image.Catalog, e image.CatalogImage, imgName string, r progress.Reporter) (store.Image, []string, error) {
	u, err := cat.BundleURL(e)
	if err != nil {
		return store.Image{}, nil, err
	}
	dlDir := filepath.Join(s.paths.CacheDir, "downloads")
	if err := os.MkdirAll(dlDir, 0o700); err != nil {
		return store.Image{}, nil, err
	}
	bundle := filepath.Join(dlDir, e.SHA256+".tar.zst")
	bar := progress.NewBytes(r, api.StageDownload, e.Name+" bundle")
	progress.Stage(r, "pull", "fetching "+u)
	if err := image.Fetch(ctx, image.Download{URL: u, SHA256: e.SHA256, Size: e.Size, Dest: bundle, Progress: bar.Update}); err != nil {
		return store.Image{}, nil, err
	}
	defer os.Remove(bundle) // the image holds everything it did
	bar.Finish()
	tmp, err := s.newImageFile(imgName)
	if err != nil {
		return store.Image{}, nil, err
	}
	defer discardTemp(tmp)
	f, err := os.Open(bundle)
	if err != nil {
		return store.Image{}, nil, err
	}
	defer f.Close()
	progress.Stage(r, "unpack", "verifying and unpacking rootfs.ext4")
	m, err := image.ReadBundle(f, tmp, 1<<36)
	if err != nil {
		return store.Image{}, nil, fmt.Errorf("%s: %w", u, err) // image.ReadBundle says "bundle …"
	}
	kern := e.Kernel
	if kern == "" {
		kern = m.Kernel
	}
	if kern != "" {
		if _, err := s.ensureKernel(ctx, kern, r); err != nil {
			return store.Image{}, nil, err
		}
	}
	init := m.Init
	if init == "" {
		init = store.InitNone
	}
	rt := store.ImageRuntime(m.Runtime)
	notes := describeContents(strings.TrimPrefix(init, store.InitNone), init, m.HasSSHD)
	notes = append(notes, describeRuntime(rt)...)
	im, err := s.publish(ctx, tmp, store.Image{Name: imgName, Source: "bundle " + u, Kernel: kern,
		Init: init, HasSSHD: m.HasSSHD, Digest: "sha256:" + m.RootfsSHA256, Ref: e.Name, Runtime: rt})
	return im, notes, err
}

// findImage resolves what `--image X` names: a registered image, or one
// pulled earlier from the reference X.
func (s *Service) findImage(ctx context.Context, x string) (store.Image, error) {
	im, err := s.store.GetImage(ctx, x)
	if err == nil || !errors.Is(err, store.ErrNotFound) || !looksLikeRef(x) {
		return im, err
	}
	ims, err := s.store.ListImages(ctx)
	if err != nil {
		return im, err
	}
	for _, c := range ims {
		if c.Source == "oci "+x {
			return c, nil
		}
	}
	return im, fmt.Errorf("image %q: %w", x, store.ErrNotFound)
}
