package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Download is one sha256-pinned file fetched over HTTP(S) or from a local
// path (file:// or absolute), as catalogs publish bundles.
type Download struct {
	URL    string
	SHA256 string // hex; required: nothing unpinned is fetched
	Size   int64  // expected size, 0 when the catalog does not say
	// MaxSize refuses anything larger (decompression bombs start as
	// big downloads too); default 64 GiB.
	MaxSize  int64
	Dest     string // final path; Dest+".partial" while downloading
	Client   *http.Client
	Progress func(done, total int64)
}

// ErrDigestMismatch is wrapped by Fetch when the content is not what the
// catalog pinned; the message shows both digests.
var ErrDigestMismatch = errors.New("sha256 mismatch")

// Fetch downloads d.URL to d.Dest and verifies it. An interrupted download
// (context ended, or the server stalled: ErrStalled) leaves
// Dest+".partial", and the next Fetch of the same Dest resumes it with an
// HTTP range request when the server supports one; any other failure
// removes it.
func Fetch(ctx context.Context, d Download) (err error) {
	if len(d.SHA256) != 64 {
		return fmt.Errorf("%s: catalog entry has no sha256: refused", d.URL)
	}
	if d.MaxSize <= 0 {
		d.MaxSize = maxImageSize
	}
	if d.Size > d.MaxSize {
		return fmt.Errorf("%s: %d bytes is over the %d-byte limit: refused", d.URL, d.Size, d.MaxSize)
	}
	part := d.Dest + ".partial"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrStalled) {
			os.Remove(part)
		}
	}()
	h := sha256.New()
	have, err := io.Copy(h, f) // hash what an earlier attempt left
	if err != nil {
		return err
	}
	if d.Size > 0 && have > d.Size {
		have = 0
	}
	body, total, offset, err := open(ctx, d, have)
	if err != nil {
		return err
	}
	defer body.Close()
	if offset == 0 && have > 0 {
		h.Reset() // the server cannot resume: start over
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	if total <= 0 {
		total = d.Size
	}
	done := offset
	prog := func(n int64) {
		done += n
		if d.Progress != nil {
			d.Progress(done, total)
		}
	}
	prog(0)
	limit := d.MaxSize - offset
	if d.Size > 0 {
		limit = d.Size - offset
	}
	n, err := io.Copy(io.MultiWriter(f, h, countWriter(prog)), io.LimitReader(&ctxReader{ctx, body}, limit+1))
	if err != nil {
		return fmt.Errorf("download %s: %w", d.URL, err)
	}
	if n > limit {
		return fmt.Errorf("%s: larger than the %d bytes expected: refused", d.URL, limit+offset)
	}
	if d.Size > 0 && offset+n != d.Size {
		return fmt.Errorf("%s: got %d bytes, the catalog says %d (truncated?)", d.URL, offset+n, d.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(d.SHA256) {
		return fmt.Errorf("%s: %w: expected sha256:%s, got sha256:%s", d.URL, ErrDigestMismatch, strings.ToLower(d.SHA256), got)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(part, d.Dest)
}

// open starts reading d.URL from byte offset (0 when it cannot resume)
// and returns the body, the full size if known, and the offset granted.
func open(ctx context.Context, d Download, offset int64) (io.ReadCloser, int64, int64, error) {
	u, err := url.Parse(d.URL)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("bad URL %q: %w", d.URL, err)
	}
	switch u.Scheme {
	case "", "file":
		p := u.Path
		if u.Scheme == "" {
			p = d.URL
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, 0, 0, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, 0, err
		}
		if offset > st.Size() {
			offset = 0
		}
		_, err = f.Seek(offset, io.SeekStart)
		return f, st.Size(), offset, err
	case "http", "https":
	default:
		return nil, 0, 0, fmt.Errorf("%s: only http, https and file URLs are fetched", d.URL)
	}
	ctx, cancel := context.WithCancel(ctx) // ended by idleBody on a stall
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL, nil)
	if err != nil {
		cancel()
		return nil, 0, 0, err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	c := d.Client
	if c == nil {
		c = DefaultHTTPClient()
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		return nil, 0, 0, err
	}
	body := newIdleBody(resp.Body, readIdleTimeout, cancel)
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		return body, offset + resp.ContentLength, offset, nil
	case resp.StatusCode == http.StatusOK:
		return body, resp.ContentLength, 0, nil
	}
	body.Close()
	return nil, 0, 0, fmt.Errorf("GET %s: %s", d.URL, resp.Status)
}

// FetchSmall reads a small document (a catalog) from a URL or path.
func FetchSmall(ctx context.Context, src string, client *http.Client, limit int64) ([]byte, error) {
	body, _, _, err := open(ctx, Download{URL: src, Client: client}, 0)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes: refused", src, limit)
	}
	return b, nil
}

// FileSHA256 is the hex sha256 of a file's content (cache keys built from
// what a file holds, not where it is).
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
