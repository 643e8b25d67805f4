package cli

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/store"
)

// Doctor reads the store without migrating it: a database from an older
// banger is reported as awaiting migration (not as "image not built"),
// one from a newer banger fails, a current one is looked into.
func TestDoctorStoreChecksSchemaVersions(t *testing.T) {
	ctx := context.Background()
	paths := config.Paths{StateDir: t.TempDir()}
	cfg, err := config.Load(filepath.Join(t.TempDir(), "none.toml"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, paths.Database())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	latest := store.LatestSchema()
	exec := func(q string, args ...any) {
		t.Helper()
		db, err := sql.Open("sqlite", paths.Database())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	line := func(cs []check) string {
		var b strings.Builder
		for _, c := range cs {
			b.WriteString(c.Status + " " + c.Name + ": " + c.Detail + "\n")
		}
		return b.String()
	}

	got := line(storeChecks(ctx, paths, cfg))
	if !strings.Contains(got, "pass store") || !strings.Contains(got, "warn image: "+cfg.DefaultImage+" not built") {
		t.Errorf("current schema:\n%s", got)
	}

	exec(`DELETE FROM schema_migrations WHERE version = ?`, latest)
	got = line(storeChecks(ctx, paths, cfg))
	if !strings.Contains(got, "the daemon migrates it to") || strings.Contains(got, "not built") || strings.Contains(got, "fail") {
		t.Errorf("older schema:\n%s", got)
	}

	exec(`INSERT INTO schema_migrations(version) VALUES (?), (?)`, latest, latest+1)
	got = line(storeChecks(ctx, paths, cfg))
	if !strings.Contains(got, "fail store") || !strings.Contains(got, "newer than this banger's") {
		t.Errorf("newer schema:\n%s", got)
	}
}
