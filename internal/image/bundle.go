package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
)

// A bundle is how images travel between machines: a zstd-compressed tar
// holding manifest.json (first, so a reader knows what follows) and
// rootfs.ext4. Catalogs pin a bundle by the sha256 of the whole file; the
// manifest pins the rootfs inside it.
const (
	BundleManifest = "manifest.json"
	BundleRootfs   = "rootfs.ext4"
	BundleVersion  = 1
)

// Manifest describes a bundled image.
type Manifest struct {
	Version      int       `json:"version"`
	Name         string    `json:"name"`
	Kernel       string    `json:"kernel,omitempty"` // kernel catalog name to boot it with
	Init         string    `json:"init,omitempty"`   // "" or "/sbin/init"
	HasSSHD      bool      `json:"has_sshd"`
	RootfsSHA256 string    `json:"rootfs_sha256"`
	RootfsSize   int64     `json:"rootfs_size"`
	Source       string    `json:"source,omitempty"`
	Created      time.Time `json:"created"`
	// Runtime is the image's environment, working directory and default
	// command (from its OCI config); a reader that predates it ignores it.
	Runtime Runtime `json:"runtime,omitzero"`
}

// WriteBundle writes a bundle of the ext4 image at rootfs to w, filling in
// m's rootfs digest and size.
func WriteBundle(w io.Writer, rootfs string, m Manifest) (Manifest, error) {
	f, err := os.Open(rootfs)
	if err != nil {
		return m, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return m, err
	}
	m.Version, m.RootfsSize, m.RootfsSHA256 = BundleVersion, n, hex.EncodeToString(h.Sum(nil))
	if m.Created.IsZero() {
		m.Created = time.Now().UTC().Truncate(time.Second)
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return m, err
	}
	tw := tar.NewWriter(zw)
	mt := m.Created
	if err := tw.WriteHeader(&tar.Header{Name: BundleManifest, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(js)), ModTime: mt}); err != nil {
		return m, err
	}
	if _, err := tw.Write(js); err != nil {
		return m, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: BundleRootfs, Typeflag: tar.TypeReg, Mode: 0o644, Size: n, ModTime: mt}); err != nil {
		return m, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return m, err
	}
	if _, err := io.CopyN(tw, f, n); err != nil {
		return m, err
	}
	if err := tw.Close(); err != nil {
		return m, err
	}
	return m, zw.Close()
}

// ReadBundle unpacks a bundle read from r: the manifest is returned and
// the rootfs written to out, at most maxRootfs bytes. Entries other than
// the two expected, links, and names that escape are refused by name.
func ReadBundle(r io.Reader, out io.Writer, maxRootfs int64) (Manifest, error) {
	var m Manifest
	dec, closeDec, err := Decompress(r, 1<<30)
	if err != nil {
		return m, fmt.Errorf("read bundle: %w", err)
	}
	defer closeDec()
	tr := tar.NewReader(dec)
	haveManifest, haveRootfs := false, false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("read bundle: %w", err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return m, fmt.Errorf("bundle %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("bundle entry %q: only regular files are allowed, refused", hdr.Name)
		}
		switch {
		case name == BundleManifest && !haveManifest && !haveRootfs:
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20+1))
			if err != nil {
				return m, fmt.Errorf("read bundle manifest: %w", err)
			}
			if len(b) > 1<<20 {
				return m, errors.New("bundle manifest larger than 1 MiB: refused")
			}
			if err := json.Unmarshal(b, &m); err != nil {
				return m, fmt.Errorf("bundle manifest: %w", err)
			}
			if m.Version != BundleVersion {
				return m, fmt.Errorf("bundle manifest version %d: this banger reads version %d", m.Version, BundleVersion)
			}
			haveManifest = true
		case name == BundleRootfs && haveManifest && !haveRootfs:
			if m.RootfsSize <= 0 || m.RootfsSize > maxRootfs || hdr.Size != m.RootfsSize {
				return m, fmt.Errorf("bundle rootfs: %d bytes (manifest says %d, limit %d): refused", hdr.Size, m.RootfsSize, maxRootfs)
			}
			h := sha256.New()
			if _, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(tr, m.RootfsSize)); err != nil {
				return m, fmt.Errorf("bundle rootfs: %w", err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != m.RootfsSHA256 {
				return m, fmt.Errorf("bundle rootfs: %w: manifest says sha256:%s, got sha256:%s", ErrDigestMismatch, m.RootfsSHA256, got)
			}
			haveRootfs = true
		default:
			return m, fmt.Errorf("bundle entry %q: unexpected (a bundle holds %s then %s), refused", hdr.Name, BundleManifest, BundleRootfs)
		}
	}
	if !haveRootfs {
		return m, fmt.Errorf("bundle has no %s (truncated?)", BundleRootfs)
	}
	return m, nil
}
