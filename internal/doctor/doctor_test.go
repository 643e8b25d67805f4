package doctor

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/doctor/report"
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
	line := func(cs []Check) string {
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
	summary := func(cs []Check) (config []Check, rest []string) {
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
	_, clean := summary(Run(ctx, paths, Options{}))
	for _, body := range []string{"vmm = \"qemu\"\n\n[network]\nsubnet = ", "vmm = \"qemu\"\n\n[network]\nsubnet = \"lan\"\n", "vmm = 3\n\n\n"} {
		os.WriteFile(paths.ConfigFile(), []byte(body), 0o600)
		cfgChecks, rest := summary(Run(ctx, paths, Options{}))
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

// The snippet names the helper, this binary, where it really lives
// (symlinks resolved): the daemon runs `sudo -n <that path> priv OP`, so
// after `make install` that is the root-owned bangerd in $(PREFIX)/bin.
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
	if err := PrintSudoers(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n# "+real+" must be owned by root") || !strings.Contains(out.String(), real+" priv ensure") {
		t.Fatalf("snippet does not name %s:\n%s", real, out.String())
	}
	if strings.Contains(out.String(), "network priv") {
		t.Fatalf("snippet names the old helper:\n%s", out.String())
	}
}

// `bangerd doctor --json` prints the report; bangerd and banger-agent are
// looked for beside --client (the banger that asked); exit 1 when a check
// fails, 2 on a usage error.
func TestMainReport(t *testing.T) {
	ctx := context.Background()
	paths := config.Paths{StateDir: t.TempDir(), ConfigDir: t.TempDir(), RuntimeDir: filepath.Join(t.TempDir(), "run")}
	dir := t.TempDir()
	client := filepath.Join(dir, "banger")
	os.WriteFile(filepath.Join(dir, "bangerd"), nil, 0o755)
	var out, errb strings.Builder
	code := run(ctx, paths, []string{"--json", "--client", client}, &out, &errb)
	var checks []report.Check
	if err := json.Unmarshal([]byte(out.String()), &checks); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	byName := map[string]report.Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	if c := byName["bangerd"]; c.Status != "pass" || c.Detail != filepath.Join(dir, "bangerd") {
		t.Errorf("bangerd check %+v, want pass beside %s", c, client)
	}
	if c := byName["banger-agent"]; c.Status != "fail" || c.Detail != "not found beside "+client {
		t.Errorf("banger-agent check %+v, want fail beside %s", c, client)
	}
	if code != 1 || !report.Failed(checks) {
		t.Errorf("exit %d with a failing check, want 1", code)
	}
	var human strings.Builder
	run(ctx, paths, []string{"--client", client}, &human, &errb)
	if !strings.Contains(human.String(), "FAIL  banger-agent ") || !strings.Contains(human.String(), "fix: `make build`") {
		t.Errorf("human report:\n%s", human.String())
	}
	for _, args := range [][]string{{"--bogus"}, {"extra"}} {
		if code := run(ctx, paths, args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
