package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/store"
)

// storeChecks opens the daemon's database read-only: it never migrates.
func storeChecks(ctx context.Context, paths config.Paths, cfg config.Config) []Check {
	if _, err := os.Stat(paths.Database()); errors.Is(err, os.ErrNotExist) {
		return []Check{{"warn", "store", "no database yet at " + paths.Database(),
			"the first `banger vm run` creates it and builds the default image and kernel (about 90 s)"}}
	}
	st, err := store.OpenReadOnly(ctx, paths.Database())
	if err != nil {
		return []Check{{"fail", "store", err.Error(), "check permissions of " + paths.Database()}}
	}
	defer st.Close()
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return []Check{{"fail", "store", "unreadable: " + err.Error(), "move " + paths.Database() + " aside"}}
	}
	switch latest := store.LatestSchema(); {
	case v > latest:
		return []Check{{"fail", "store", fmt.Sprintf("%s has schema %d, newer than this banger's %d", paths.Database(), v, latest),
			"use the newer banger that wrote it"}}
	case v < latest:
		// Doctor never migrates; the lookups below may need the new schema.
		return []Check{{"pass", "store", fmt.Sprintf("%s (schema %d; the daemon migrates it to %d when it next starts)", paths.Database(), v, latest), ""}}
	}
	out := []Check{{"pass", "store", fmt.Sprintf("%s (schema %d)", paths.Database(), v), ""}}
	if im, err := st.GetImage(ctx, cfg.DefaultImage); errors.Is(err, store.ErrNotFound) {
		out = append(out, Check{"warn", "image", cfg.DefaultImage + " not built", "`banger image build` (or the first vm run builds it)"})
	} else if err != nil {
		out = append(out, Check{"fail", "image", err.Error(), "move " + paths.Database() + " aside"})
	} else {
		out = append(out, Check{"pass", "image", im.Name + " " + im.Path, ""})
	}
	if k, err := st.GetKernel(ctx, cfg.DefaultKernel); errors.Is(err, store.ErrNotFound) {
		out = append(out, Check{"warn", "kernel", cfg.DefaultKernel + " not imported", "`banger kernel import` (or the first vm run imports it)"})
	} else if err != nil {
		out = append(out, Check{"fail", "kernel", err.Error(), "move " + paths.Database() + " aside"})
	} else {
		out = append(out, Check{"pass", "kernel", k.Name + " " + k.Release, ""})
	}
	return append(out, snapshotCheck(ctx, st, paths))
}
