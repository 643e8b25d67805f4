package cli

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
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

// A broken config.toml is one failing check naming the file, the line and
// the problem; every other check reads as it does without a config file.
func TestDoctorReportsBrokenConfigOnce(t *testing.T) {
	ctx := context.Background()
	paths := config.Paths{StateDir: t.TempDir(), ConfigDir: t.TempDir(), RuntimeDir: filepath.Join(t.TempDir(), "run")}
	summary := func(cs []check) (config []check, rest []string) {
		for _, c := range cs {
			if c.Name == "" {
				t.Errorf("check without a name: %+v", c)
			}
			if c.Name == "config" {
				config = append(config, c)
				continue
			}
			rest = append(rest, c.Status+" "+c.Name)
		}
		return config, rest
	}
	_, clean := summary(doctor(ctx, paths))
	for _, body := range []string{"vmm = \"qemu\"\n\n[network]\nsubnet = ", "vmm = \"qemu\"\n\n[network]\nsubnet = \"lan\"\n", "vmm = 3\n\n\n"} {
		os.WriteFile(paths.ConfigFile(), []byte(body), 0o600)
		cfgChecks, rest := summary(doctor(ctx, paths))
		if len(cfgChecks) != 1 || cfgChecks[0].Status != "fail" {
			t.Fatalf("%q: config checks %+v, want one failure", body, cfgChecks)
		}
		want := []string{paths.ConfigFile() + ", line ", "network.subnet"}
		if strings.HasPrefix(body, "vmm = 3") {
			want = []string{paths.ConfigFile() + ", line 1", "vmm"}
		}
		for _, w := range want {
			if !strings.Contains(cfgChecks[0].Detail, w) {
				t.Errorf("%q: config check %q lacks %q", body, cfgChecks[0].Detail, w)
			}
		}
		if !slices.Equal(rest, clean) {
			t.Errorf("%q: the other checks differ from a host without config:\n%v\nwant\n%v", body, rest, clean)
		}
	}
}

// The snippet names the banger binary where it really lives (symlinks
// resolved): bangerd runs the helper from beside itself, so after `make
// install` that is the root-owned copy in $(PREFIX)/bin.
func TestSudoersNamesTheRealBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(self)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := printSudoers(&Env{Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n# "+real+" must be owned by root") || !strings.Contains(out.String(), real+" network priv ensure") {
		t.Fatalf("snippet does not name %s:\n%s", real, out.String())
	}
}
