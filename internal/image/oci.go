package image

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// DefaultPlatform is the only platform banger guests run.
const DefaultPlatform = "linux/amd64"

// OCIOptions configures PullOCI.
type OCIOptions struct {
	Ref      string // e.g. debian:bookworm-slim, 127.0.0.1:5000/app@sha256:...
	Platform string // default DefaultPlatform
	// BlobDir caches downloaded layers (verified, by digest) so that an
	// interrupted pull resumes from the layers it already has.
	BlobDir string
	// Keychain defaults to the user's docker config and credential
	// helpers (authn.DefaultKeychain).
	Keychain  authn.Keychain
	Transport http.RoundTripper // default DefaultHTTPClient's; wrapped in idleTransport
	Flatten   FlattenOptions
	// Progress gets byte counts (progress.Bytes): stage "download"
	// (compressed layers fetched) then "flatten" (compressed layers
	// read), each closed by a summary line. May be nil.
	Progress progress.Reporter
}

// OCIResult is a pulled image.
type OCIResult struct {
	FlattenResult
	Digest    string // manifest digest, sha256:...
	Canonical string // repository@digest: what a later pull must fetch to get the same bytes
	Layers    int
	Runtime   Runtime // from the image's config
}

// Runtime is what an image's config says about running it: environment
// (KEY=VALUE), working directory and default command (Entrypoint then
// Cmd). It travels with the image: recorded at pull, kept in bundles.
type Runtime struct {
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	User       string   `json:"user,omitempty"` // name or uid, optionally :group or :gid
}

// IsZero reports that nothing is recorded (also what `omitzero` uses).
func (r Runtime) IsZero() bool {
	return len(r.Env) == 0 && r.WorkingDir == "" && len(r.Entrypoint) == 0 && len(r.Cmd) == 0 && r.User == ""
}

// runtimeOf takes the runtime facts of an OCI config. Env entries that
// no process could be given (no '=', an empty name, a NUL byte) and a
// working directory that is not absolute are dropped rather than failing
// every command later.
func runtimeOf(c v1.Config) Runtime {
	var r Runtime
	for _, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" && !strings.ContainsRune(kv, 0) {
			r.Env = append(r.Env, kv)
		}
	}
	if path.IsAbs(c.WorkingDir) {
		r.WorkingDir = path.Clean(c.WorkingDir)
	}
	if len(c.Entrypoint) > 0 {
		r.Entrypoint = append([]string(nil), c.Entrypoint...)
	}
	if len(c.Cmd) > 0 {
		r.Cmd = append([]string(nil), c.Cmd...)
	}
	if u := strings.TrimSpace(c.User); u != "" && !strings.ContainsAny(u, "\x00\n") {
		r.User = u
	}
	return r
}

// PullOCI fetches an OCI (or Docker v2) image and flattens its layers into
// out as ext4. Layers are downloaded into opts.BlobDir first, each checked
// against its digest, and read back from there; the blobs are left for the
// caller to release (see ReleaseBlobs) so a failed pull can resume.
func PullOCI(ctx context.Context, opts OCIOptions, out *os.File) (OCIResult, []string, error) {
	var res OCIResult
	if opts.Platform == "" {
		opts.Platform = DefaultPlatform
	}
	plat, err := v1.ParsePlatform(opts.Platform)
	if err != nil {
		return res, nil, fmt.Errorf("platform %q: %w", opts.Platform, err)
	}
	ref, err := name.ParseReference(opts.Ref)
	if err != nil {
		return res, nil, fmt.Errorf("%q is neither a catalog image nor an OCI reference: %w", opts.Ref, err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	// The registry gets the waits a Download gets (httpclient.go):
	// bounded connect, TLS and response headers, and no silent body.
	tr := opts.Transport
	if tr == nil {
		tr = DefaultHTTPClient().Transport
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(*plat), remote.WithUserAgent("banger"),
		remote.WithTransport(idleTransport{tr})}
	img, err := remote.Image(ref, ropts...)
	if err != nil {
		return res, nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if err := checkManifest(img); err != nil {
		return res, nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return res, nil, fmt.Errorf("pull %s: config: %w", ref, err)
	}
	if cf.OS != plat.OS || cf.Architecture != plat.Architecture {
		return res, nil, fmt.Errorf("pull %s: the image is for %s/%s; banger guests are %s", ref, cf.OS, cf.Architecture, opts.Platform)
	}
	dg, err := img.Digest()
	if err != nil {
		return res, nil, err
	}
	res.Digest = dg.String()
	res.Runtime = runtimeOf(cf.Config)
	res.Canonical = ref.Context().Digest(dg.String()).String()
	layers, err := img.Layers()
	if err != nil {
		return res, nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	res.Layers = len(layers)
	var total int64
	for _, l := range layers {
		mt, _ := l.MediaType()
		if mt == types.DockerForeignLayer || mt == types.OCIRestrictedLayer {
			return res, nil, fmt.Errorf("pull %s: foreign (non-distributable) layers are not supported", ref)
		}
		sz, err := l.Size()
		if err != nil {
			return res, nil, err
		}
		total += sz
	}
	if err := os.MkdirAll(opts.BlobDir, 0o700); err != nil {
		return res, nil, err
	}
	// Acquired before the first download so that a concurrent pull that
	// finishes first does not delete blobs this one is about to use.
	var digests []string
	for _, l := range layers {
		d, _ := l.Digest()
		digests = append(digests, d.String())
	}
	acquireBlobs(digests)
	flat := make([]Layer, 0, len(layers))
	dl := progress.NewBytes(opts.Progress, api.StageDownload, "layers")
	var done int64
	downloaded := false
	for i, l := range layers {
		p, size, err := fetchBlob(ctx, opts.BlobDir, l, func(n int64) { done += n; downloaded = true; dl.Update(done, total) })
		if err != nil {
			return res, digests, fmt.Errorf("pull %s: layer %d/%d: %w", ref, i+1, len(layers), err)
		}
		flat = append(flat, blobLayer(digests[i], p, size))
	}
	if downloaded {
		dl.Finish()
	}
	fb := progress.NewBytes(opts.Progress, api.StageFlatten, "ext4")
	flattened := false
	fo := opts.Flatten
	fo.Progress = func(done, total int64) { flattened = true; fb.Update(done, total) }
	res.FlattenResult, err = Flatten(ctx, flat, out, fo)
	if err != nil {
		return res, digests, &FlattenError{fmt.Errorf("flatten %s: %w", ref, err)}
	}
	if flattened {
		fb.Finish()
	}
	return res, digests, nil
}

// FlattenError is a pull that got all its layers but could not flatten
// them (a refused entry, a limit): pulling again would fail the same way,
// so its blobs need not be kept for a resume.
type FlattenError struct{ Err error }

func (e *FlattenError) Error() string { return e.Err.Error() }
func (e *FlattenError) Unwrap() error { return e.Err }

// fetchBlob makes sure the layer's compressed blob is in dir, verified
// against its digest, and returns its path.
func fetchBlob(ctx context.Context, dir string, l v1.Layer, count func(int64)) (string, int64, error) {
	d, err := l.Digest()
	if err != nil {
		return "", 0, err
	}
	size, err := l.Size()
	if err != nil {
		return "", 0, err
	}
	if d.Algorithm != "sha256" || len(d.Hex) != 64 || strings.Trim(d.Hex, "0123456789abcdef") != "" {
		return "", 0, fmt.Errorf("unsupported layer digest %s", d)
	}
	final := filepath.Join(dir, "sha256-"+d.Hex)
	if st, err := os.Stat(final); err == nil && st.Size() == size {
		count(size) // verified when it was written: resume past it
		return final, size, nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(dir, "sha256-"+d.Hex+".partial-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	defer tmp.Close()
	h := sha256.New()
	// One byte more than declared tells an oversized blob from a good one.
	n, err := io.Copy(io.MultiWriter(tmp, h, countWriter(count)), io.LimitReader(&ctxReader{ctx, rc}, size+1))
	if err != nil {
		return "", 0, fmt.Errorf("download %s: %w", d, err)
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if n != size || got != d.String() {
		return "", 0, fmt.Errorf("layer %s: downloaded %d bytes (manifest says %d) with digest %s, expected %s: refused", d, n, size, got, d)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", 0, err
	}
	return final, size, nil
}

// LayerFromFile is a Layer read from a layer file (gzip, zstd or plain
// tar) already on disk, e.g. for benchmarks.
func LayerFromFile(path string) (Layer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Layer{}, err
	}
	return blobLayer(filepath.Base(path), path, st.Size()), nil
}

// blobLayer reads a verified layer blob (gzip, zstd or plain tar).
func blobLayer(digest, path string, size int64) Layer {
	return Layer{Name: digest, Size: size, Open: func(count func(int64)) (EntryReader, io.Closer, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		r, closeDec, err := Decompress(&countingReader{r: f, fn: count}, 1<<30)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("layer %s: %w", digest, err)
		}
		return tar.NewReader(r), closerFunc(func() error { closeDec(); return f.Close() }), nil
	}}
}

// Decompress sniffs gzip or zstd (by magic number) and returns a reader of
// the decompressed stream, or r itself for anything else. maxWindow bounds
// the zstd decoder's memory.
func Decompress(r io.Reader, maxWindow uint64) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		// klauspost's gzip inflates about twice as fast as compress/gzip.
		zr, err := kgzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

type countingReader struct {
	r  io.Reader
	fn func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.fn(int64(n))
	}
	return n, err
}

type countWriter func(int64)

func (c countWriter) Write(p []byte) (int, error) { c(int64(len(p))); return len(p), nil }

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

// ContextReader reads r until ctx ends, then fails with ctx's error: a
// long copy (a download, an upload from a client) stops promptly.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
