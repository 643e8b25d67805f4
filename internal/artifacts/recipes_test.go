package artifacts

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/image"
)

func TestRecipeFor(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	for name, want := range map[string]*image.Recipe{
		"debian-bookworm-dev": image.DevRecipe,
		"debian-bookworm":     image.GoldenRecipe,
		"my-own-name":         image.GoldenRecipe, // `image build NAME` registers the default image as NAME
		"alpine":              image.GoldenRecipe, // an OCI entry is not a build
	} {
		if got := s.recipeFor(ctx, name); got != want {
			t.Errorf("recipeFor(%q) = %s, want %s", name, got.Key, want.Key)
		}
	}
}

// Each recipe has its own cached build: building (or pulling, under
// another name) the dev image uses the dev build, never the base one.
func TestBuildUsesTheEntrysRecipe(t *testing.T) {
	s, paths := newTestService(t)
	ctx := context.Background()
	for _, r := range []*image.Recipe{image.GoldenRecipe, image.DevRecipe} {
		p := filepath.Join(paths.CacheDir, "images", r.Key+".ext4")
		must(t, os.MkdirAll(filepath.Dir(p), 0o700))
		must(t, os.WriteFile(p, ext4With(t, map[string]string{"etc/recipe": r.Key}), 0o644))
	}
	im, err := s.Build(ctx, api.BuildImageParams{Name: "debian-bookworm-dev"}, nil)
	must(t, err)
	if im.Source != "mmdebstrap "+image.DevRecipe.Key || filepath.Base(im.Path) != image.DevRecipe.Key+".ext4" {
		t.Errorf("dev build = %+v", im)
	}
	info, err := s.Pull(ctx, api.PullImageParams{Ref: "debian-bookworm-dev", Name: "mydev"}, nil)
	must(t, err)
	if info.Source != "mmdebstrap "+image.DevRecipe.Key {
		t.Errorf("pull --name mydev = %+v", info.Image)
	}
	im, err = s.Build(ctx, api.BuildImageParams{}, nil)
	must(t, err)
	if im.Name != "debian-bookworm" || im.Source != "mmdebstrap "+image.GoldenRecipe.Key {
		t.Errorf("default build = %+v", im)
	}
}
