package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
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

// latestMigration is the highest version among the embedded migrations,
// and how many there are.
func latestMigration(t *testing.T) (int, int) {
	t.Helper()
	list, err := migrationFiles(migrations)
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	return list[len(list)-1].version, len(list)
}

func TestMigrationFilesRefuseBadNamesAndSharedNumbers(t *testing.T) {
	for name, files := range map[string][]string{
		"shared number": {"0001_init.sql", "0002_a.sql", "0002_b.sql"},
		"no number":     {"0001_init.sql", "init.sql"},
		"zero":          {"0000_init.sql"},
		"none":          nil,
	} {
		fsys := fstest.MapFS{}
		for _, f := range files {
			fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
		}
		if _, err := migrationFiles(fsys); err == nil {
			t.Errorf("%s: %v accepted", name, files)
		}
	}
	list, err := migrationFiles(fstest.MapFS{
		"migrations/0010_later.sql": {}, "migrations/0002_b.sql": {}, "migrations/0001_a.sql": {},
	})
	if err != nil || len(list) != 3 || list[0].version != 1 || list[1].version != 2 || list[2].version != 10 {
		t.Fatalf("migrationFiles = %+v, %v", list, err)
	}
}

// A database written by a newer banger is refused, not half-understood.
func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	latest, _ := latestMigration(t)
	s, path := openTest(t)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations(version) VALUES (?)`, latest+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer than this banger knows") {
		t.Fatalf("Open = %v", err)
	}
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

// A database written before migration 0008 (images without a runtime
// column) opens, migrates, keeps its rows — read back with no runtime
// recorded — and takes images with one.
func TestOlderSchemaMigrates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "banger.db")
	db, err := sql.Open("sqlite", "file:"+path)
	must(t, err)
	list, err := migrationFiles(migrations)
	must(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)`)
	must(t, err)
	for _, m := range list {
		if m.version >= 8 {
			break
		}
		body, _ := migrations.ReadFile(m.path)
		_, err := db.ExecContext(ctx, string(body))
		must(t, err)
		_, err = db.ExecContext(ctx, `INSERT INTO schema_migrations(version) VALUES (?)`, m.version)
		must(t, err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO images(name, path, uuid, size_bytes, source, created_at, kernel, init, has_sshd, digest, ref)
		VALUES ('old', '/old.ext4', 'u', 1, 'oci old', 1, '', 'none', 0, 'sha256:aa', 'r@sha256:aa')`)
	must(t, err)
	must(t, db.Close())

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a 0007 database: %v", err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v < 8 {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	old, err := s.GetImage(ctx, "old")
	if err != nil || old.Init != InitNone || old.Digest != "sha256:aa" || !old.Runtime.IsZero() {
		t.Fatalf("old image after migrating: %+v %v", old, err)
	}
	rt := ImageRuntime{Cmd: []string{"hello"}}
	must(t, s.PutImage(ctx, Image{Name: "new", Path: "/new.ext4", Source: "oci new", Runtime: rt}))
	if got, err := s.GetImage(ctx, "new"); err != nil || !reflect.DeepEqual(got.Runtime, rt) {
		t.Fatalf("new image: %+v %v", got, err)
	}
}
