package e2e

import (
	"testing"

	"github.com/banger-dev/banger/internal/benchdoc"
)

// writeBenchSection replaces (or appends) one benchmark's section of
// docs/benchmarks.md.
func writeBenchSection(t *testing.T, name, body string) {
	t.Helper()
	path, err := benchdoc.Path(repoRoot(t))
	must(t, err)
	must(t, benchdoc.WriteSection(path, name, body))
	t.Log("\n" + body)
}
