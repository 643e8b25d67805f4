package daemon

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bangerd ends a failed start with one "bangerd: <reason>" line on
// stderr (its log file when the CLI starts it): the CLI quotes that line.
func TestMainPrintsItsStartupError(t *testing.T) {
	base := t.TempDir()
	t.Setenv("HOME", base)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(base, "config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(base, "state"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "cache"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(base, "run"))
	os.MkdirAll(filepath.Join(base, "config", "banger"), 0o700)
	os.WriteFile(filepath.Join(base, "config", "banger", "config.toml"), []byte("boot_timeout = \"soon\"\n"), 0o600)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	code := Main()
	os.Stderr = saved
	w.Close()
	out, _ := io.ReadAll(r)
	if code != 1 {
		t.Fatalf("Main = %d, want 1", code)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		last = l
	}
	if !strings.HasPrefix(last, "bangerd: ") || !strings.Contains(last, "boot_timeout") || !strings.Contains(last, "invalid duration") {
		t.Fatalf("stderr ends %q, want bangerd: <the config error>", last)
	}
}
