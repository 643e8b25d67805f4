package image

// Recipe is an image built here from Debian's packages: the golden base
// (GoldenPackages, the dpkg excludes and customizeTar's changes) plus what
// the recipe adds. The catalog names a recipe with its "build" value.
type Recipe struct {
	Build string // the catalog's "build" value
	// Key names the cached build (<cache>/images/<Key>.ext4); bump it
	// when the recipe's output changes so cached images are rebuilt.
	Key      string
	Packages []string              // installed on top of GoldenPackages
	Files    map[string]RecipeFile // added by the filter, replacing the packages' own
	Links    map[string]string     // symlinks added likewise
	// Drop lists entries removed from the tree (links a postinst made
	// that the recipe does not want, e.g. units enabled at boot).
	Drop []string
}

// RecipeFile is a file a recipe adds to the image.
type RecipeFile struct {
	Content string
	Mode    int64
}

// GoldenRecipe is the default image, debian-bookworm: the base alone.
var GoldenRecipe = &Recipe{Build: "golden", Key: "bookworm-r4"}

// recipes are the builds the catalog may name.
var recipes = map[string]*Recipe{
	GoldenRecipe.Build: GoldenRecipe,
	DevRecipe.Build:    DevRecipe,
}

// LookupRecipe finds the recipe a catalog's "build" value names.
func LookupRecipe(build string) (*Recipe, bool) {
	r, ok := recipes[build]
	return r, ok
}

// RecipeNames lists the known "build" values, sorted.
func RecipeNames() []string { return sortedKeys(recipes) }

// packages is the whole package list given to mmdebstrap.
func (r *Recipe) packages() []string {
	out := append([]string{}, GoldenPackages...)
	if r != nil {
		out = append(out, r.Packages...)
	}
	return out
}

// filterOptions adds the recipe's files, links and drops to the base's.
func (r *Recipe) filter(opt filterOptions) filterOptions {
	if r == nil {
		return opt
	}
	opt.Files, opt.Links, opt.Drop = r.Files, r.Links, r.Drop
	return opt
}

// dropSet is Drop as a set (cleaned names).
func dropSet(names []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[cleanName(n)] = true
	}
	return m
}
