package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBenchSection replaces (or appends) one benchmark's section of
// docs/benchmarks.md, between <!-- bench:NAME --> markers, so each
// benchmark can be re-run on its own without losing the others' results.
func writeBenchSection(t *testing.T, name, body string) {
	t.Helper()
	path := filepath.Join(repoRoot(t), "docs", "benchmarks.md")
	old, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(old), "# Benchmarks") {
		old = []byte("# Benchmarks\n\nEach section is written by `make bench` (scripts/bench.sh); numbers are\nmeasured, never asserted by tests.\n")
	}
	begin, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	section := begin + "\n" + strings.TrimSpace(body) + "\n" + end
	doc := string(old)
	if i, j := strings.Index(doc, begin), strings.Index(doc, end); i >= 0 && j > i {
		doc = doc[:i] + section + doc[j+len(end):]
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section + "\n"
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	must(t, os.WriteFile(path, []byte(doc), 0o644))
	t.Log("\n" + body)
}
