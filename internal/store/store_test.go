package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// openTest opens a fresh store in t.TempDir() and closes it at cleanup.
func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "banger.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// latestMigration is the highest version among the embedded migrations.
func latestMigration(t *testing.T) (int, int) {
	t.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded migrations: %v", err)
	}
	latest := 0
	for _, n := range names {
		v, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(n, "migrations/"), "_", 2)[0])
		if err != nil {
			t.Fatalf("migration %s: %v", n, err)
		}
		latest = max(latest, v)
	}
	return latest, len(names)
}

func TestMigrationsApplyOnce(t *testing.T) {
	ctx := context.Background()
	want, count := latestMigration(t)
	s, path := openTest(t)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != want {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, want)
	}
	if err := s.PutImage(ctx, Image{Name: "img", Path: "/i", SizeBytes: 1, Source: "test"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopening must not re-run migrations (which would fail on existing
	// tables) and must keep the data.
	for i := 0; i < 2; i++ {
		s2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		v, err := s2.SchemaVersion(ctx)
		if err != nil || v != want {
			t.Fatalf("reopen %d: SchemaVersion = %d, %v; want %d", i, v, err, want)
		}
		var rows int
		if err := s2.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != count {
			t.Fatalf("reopen %d: %d schema_migrations rows (%v), want %d", i, rows, err, count)
		}
		if _, err := s2.GetImage(ctx, "img"); err != nil {
			t.Fatalf("reopen %d lost data: %v", i, err)
		}
		s2.Close()
	}
}

func TestImages(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	if ims, err := s.ListImages(ctx); err != nil || len(ims) != 0 {
		t.Fatalf("empty ListImages = %v, %v", ims, err)
	}
	for _, im := range []Image{
		{Name: "zeta", Path: "/z.ext4", UUID: "u-z", SizeBytes: 3 << 30, Source: "mmdebstrap"},
		{Name: "alpha", Path: "/a.ext4", UUID: "u-a", SizeBytes: 1 << 30, Source: "import"},
	} {
		if err := s.PutImage(ctx, im); err != nil {
			t.Fatalf("PutImage %s: %v", im.Name, err)
		}
	}
	err := s.PutImage(ctx, Image{Name: "alpha", Path: "/other", SizeBytes: 1, Source: "x"})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `"alpha"`) {
		t.Fatalf("duplicate PutImage = %v, want ErrConflict naming alpha", err)
	}
	got, err := s.GetImage(ctx, "zeta")
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != "/z.ext4" || got.UUID != "u-z" || got.SizeBytes != 3<<30 || got.Source != "mmdebstrap" || got.CreatedAt.IsZero() {
		t.Fatalf("GetImage = %+v", got)
	}
	if _, err := s.GetImage(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetImage missing = %v, want ErrNotFound", err)
	}
	ims, err := s.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := imageNames(ims); !reflect.DeepEqual(names, []string{"alpha", "zeta"}) {
		t.Fatalf("ListImages names = %v, want sorted [alpha zeta]", names)
	}
	if ims[0].Path != "/a.ext4" {
		t.Fatalf("duplicate PutImage overwrote alpha: %+v", ims[0])
	}
}

func imageNames(ims []Image) []string {
	var out []string
	for _, im := range ims {
		out = append(out, im.Name)
	}
	return out
}

func TestKernels(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	for _, k := range []Kernel{
		{Name: "debian-cloud", Dir: "/k/dc", Release: "6.1.0-26-cloud-amd64", Source: "apt"},
		{Name: "custom", Dir: "/k/c", Release: "6.6.0", Source: "deb"},
	} {
		if err := s.PutKernel(ctx, k); err != nil {
			t.Fatalf("PutKernel %s: %v", k.Name, err)
		}
	}
	if err := s.PutKernel(ctx, Kernel{Name: "custom", Dir: "/x", Release: "1", Source: "x"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate PutKernel = %v, want ErrConflict", err)
	}
	k, err := s.GetKernel(ctx, "debian-cloud")
	if err != nil {
		t.Fatal(err)
	}
	if k.Dir != "/k/dc" || k.Release != "6.1.0-26-cloud-amd64" || k.Source != "apt" || k.CreatedAt.IsZero() {
		t.Fatalf("GetKernel = %+v", k)
	}
	if _, err := s.GetKernel(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetKernel missing = %v, want ErrNotFound", err)
	}
	ks, err := s.ListKernels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[0].Name != "custom" || ks[1].Name != "debian-cloud" || ks[0].Dir != "/k/c" {
		t.Fatalf("ListKernels = %+v, want custom then debian-cloud", ks)
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	if err := s.PutImage(ctx, Image{Name: "img", Path: "/i", SizeBytes: 1, Source: "t"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	defer ro.Close()
	if ims, err := ro.ListImages(ctx); err != nil || len(ims) != 1 {
		t.Fatalf("read-only ListImages = %v, %v", ims, err)
	}
	if v, err := ro.SchemaVersion(ctx); err != nil || v < 1 {
		t.Fatalf("read-only SchemaVersion = %d, %v", v, err)
	}
	if err := ro.PutImage(ctx, Image{Name: "new", Path: "/n", SizeBytes: 1, Source: "t"}); err == nil {
		t.Fatal("PutImage through a read-only store succeeded")
	}
	if err := ro.PutKernel(ctx, Kernel{Name: "k", Dir: "/k", Release: "r", Source: "t"}); err == nil {
		t.Fatal("PutKernel through a read-only store succeeded")
	}
}

func TestOpenReadOnlyMissingDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.db")
	if s, err := OpenReadOnly(context.Background(), path); err == nil {
		s.Close()
		t.Fatal("OpenReadOnly of a missing database succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly created %s (stat: %v)", path, err)
	}
}
