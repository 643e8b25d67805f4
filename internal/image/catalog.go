package image

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// The image catalog maps short names to images: a bundle to download
// (url + sha256), an OCI reference to pull, or the golden image built
// locally. The built-in catalog is embedded; `image_catalog` in the config
// replaces it with a JSON document at a URL or path, which is how a team
// publishes its own images as static files (see `banger image export`).

//go:embed catalog.json
var embeddedCatalog []byte

// Catalog is an image catalog document.
type Catalog struct {
	Version int            `json:"version"`
	Images  []CatalogImage `json:"images"`
	// Source is where the catalog was read from ("built-in" or a URL);
	// relative bundle URLs resolve against it.
	Source string `json:"-"`
}

// CatalogImage is one catalog entry. Exactly one of URL, Ref and Build
// says where the image comes from.
type CatalogImage struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`    // bundle, relative to the catalog
	SHA256      string `json:"sha256,omitempty"` // of the bundle file
	Size        int64  `json:"size,omitempty"`   // of the bundle file
	Kernel      string `json:"kernel,omitempty"`
	Ref         string `json:"ref,omitempty"`   // OCI reference
	Build       string `json:"build,omitempty"` // a Recipe's Build ("golden", "golden-dev"): built here with mmdebstrap
}

// BuiltinCatalog is the catalog's name when it is the embedded one.
const BuiltinCatalog = "built-in"

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
var hexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LoadCatalog reads the catalog at src, or the embedded one when src is
// empty, and checks every entry.
func LoadCatalog(ctx context.Context, src string, client *http.Client) (*Catalog, error) {
	b, name := embeddedCatalog, BuiltinCatalog
	if src != "" {
		var err error
		if b, err = FetchSmall(ctx, src, client, 4<<20); err != nil {
			return nil, fmt.Errorf("image catalog: %w", err)
		}
		name = src
	}
	return ParseCatalog(b, name)
}

// ParseCatalog decodes and validates a catalog document.
func ParseCatalog(b []byte, source string) (*Catalog, error) {
	c := &Catalog{Source: source}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("image catalog %s: %w", source, err)
	}
	seen := map[string]bool{}
	for _, e := range c.Images {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("image catalog %s: %w", source, err)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("image catalog %s: %q listed twice", source, e.Name)
		}
		seen[e.Name] = true
	}
	return c, nil
}

func (e CatalogImage) validate() error {
	if !nameRE.MatchString(e.Name) {
		return fmt.Errorf("entry %q: name is not a DNS label", e.Name)
	}
	kinds := 0
	for _, s := range []string{e.URL, e.Ref, e.Build} {
		if s != "" {
			kinds++
		}
	}
	switch {
	case kinds != 1:
		return fmt.Errorf("entry %q: needs exactly one of url, ref, build", e.Name)
	case e.URL != "" && !hexRE.MatchString(e.SHA256):
		return fmt.Errorf("entry %q: a bundle needs its sha256 (64 lowercase hex digits)", e.Name)
	case e.Build != "":
		if _, ok := LookupRecipe(e.Build); !ok {
			return fmt.Errorf("entry %q: unknown build %q (known: %s)", e.Name, e.Build, strings.Join(RecipeNames(), ", "))
		}
	}
	return nil
}

// Lookup finds an entry by name.
func (c *Catalog) Lookup(name string) (CatalogImage, bool) {
	for _, e := range c.Images {
		if e.Name == name {
			return e, true
		}
	}
	return CatalogImage{}, false
}

// BundleURL resolves the entry's bundle URL against the catalog's own.
func (c *Catalog) BundleURL(e CatalogImage) (string, error) {
	return ResolveURL(c.Source, e.URL)
}

// ResolveURL resolves ref against base (a URL or a file path), so that
// catalogs can name bundles relative to themselves.
func ResolveURL(base, ref string) (string, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("bad URL %q: %w", ref, err)
	}
	if r.IsAbs() || filepath.IsAbs(ref) || base == "" || base == BuiltinCatalog {
		return ref, nil
	}
	b, err := url.Parse(base)
	if err != nil || b.Scheme == "" {
		// base is a plain path: resolve on the filesystem.
		return filepath.Join(filepath.Dir(base), filepath.FromSlash(ref)), nil
	}
	if b.Scheme == "file" && strings.Contains(ref, "..") {
		return "", fmt.Errorf("bundle URL %q climbs out of the catalog's directory: refused", ref)
	}
	return b.ResolveReference(r).String(), nil
}
