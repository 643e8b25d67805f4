package artifacts

import (
	"context"

	"github.com/banger-dev/banger/internal/image"
)

// recipeFor is the recipe `image build NAME` builds: the one NAME's
// catalog entry names (the configured catalog's, else the built-in one's),
// else the default image's, registered as NAME.
func (s *Service) recipeFor(ctx context.Context, name string) *image.Recipe {
	for _, src := range []string{s.cfg.ImageCatalog, ""} {
		cat, err := image.LoadCatalog(ctx, src, nil)
		if err != nil {
			continue
		}
		if e, ok := cat.Lookup(name); ok && e.Build != "" {
			if r, ok := image.LookupRecipe(e.Build); ok {
				return r
			}
		}
	}
	return image.GoldenRecipe
}

// buildTime is what a build of the recipe takes on a first run.
func buildTime(r *image.Recipe) string {
	if len(r.Packages) > 0 {
		return "several minutes: Docker, compilers, Python and Node"
	}
	return "about a minute"
}
