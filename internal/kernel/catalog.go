package kernel

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"

	"github.com/banger-dev/banger/internal/image"
)

// The kernel catalog maps names to kernels: a sha256-pinned bundle
// (.tar.zst with an ELF vmlinux and/or a bzImage vmlinuz, optional
// modules.cpio and kernel.json) or a Debian kernel package imported with
// apt, whose signed package lists pin it. The built-in catalog is
// embedded; `kernel_catalog` in the config replaces it.

//go:embed catalog.json
var embeddedCatalog []byte

// Catalog is a kernel catalog document.
type Catalog struct {
	Version int            `json:"version"`
	Kernels []CatalogEntry `json:"kernels"`
	Source  string         `json:"-"`
}

// CatalogEntry is one kernel. Exactly one of URL and DebianPackage is set.
type CatalogEntry struct {
	Name          string `json:"name"`
	Description   string `json:"description,omitempty"`
	URL           string `json:"url,omitempty"`
	SHA256        string `json:"sha256,omitempty"`
	Size          int64  `json:"size,omitempty"`
	Release       string `json:"release,omitempty"`
	DebianPackage string `json:"debian_package,omitempty"` // "" with no URL: the cloud kernel
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hexRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// LoadCatalog reads the catalog at src, or the embedded one when empty.
func LoadCatalog(ctx context.Context, src string, client *http.Client) (*Catalog, error) {
	b, name := embeddedCatalog, image.BuiltinCatalog
	if src != "" {
		var err error
		if b, err = image.FetchSmall(ctx, src, client, 4<<20); err != nil {
			return nil, fmt.Errorf("kernel catalog: %w", err)
		}
		name = src
	}
	c := &Catalog{Source: name}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("kernel catalog %s: %w", name, err)
	}
	seen := map[string]bool{}
	for _, e := range c.Kernels {
		switch {
		case !nameRE.MatchString(e.Name):
			return nil, fmt.Errorf("kernel catalog %s: entry %q: name is not a DNS label", name, e.Name)
		case seen[e.Name]:
			return nil, fmt.Errorf("kernel catalog %s: %q listed twice", name, e.Name)
		case e.URL != "" && e.DebianPackage != "":
			return nil, fmt.Errorf("kernel catalog %s: entry %q: url and debian_package both set", name, e.Name)
		case e.URL != "" && !hexRE.MatchString(e.SHA256):
			return nil, fmt.Errorf("kernel catalog %s: entry %q: a bundle needs its sha256", name, e.Name)
		}
		seen[e.Name] = true
	}
	return c, nil
}

// Lookup finds an entry by name.
func (c *Catalog) Lookup(name string) (CatalogEntry, bool) {
	for _, e := range c.Kernels {
		if e.Name == name {
			return e, true
		}
	}
	return CatalogEntry{}, false
}

// BundleURL resolves the entry's URL against the catalog's.
func (c *Catalog) BundleURL(e CatalogEntry) (string, error) {
	return image.ResolveURL(c.Source, e.URL)
}
