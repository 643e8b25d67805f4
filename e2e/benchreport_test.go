package e2e

import (
	"os"
	"strconv"
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

// benchRounds skips a benchmark outside `make bench` (BANGER_BENCH=1):
// benchmarks report numbers, they are not tests. It returns the number of
// rounds to run (BANGER_BENCH_ROUNDS, default 3).
func benchRounds(t *testing.T) int {
	t.Helper()
	if os.Getenv("BANGER_BENCH") != "1" {
		t.Skip("benchmark: run by `make bench` (BANGER_BENCH=1), which writes docs/benchmarks.md")
	}
	rounds, _ := strconv.Atoi(os.Getenv("BANGER_BENCH_ROUNDS"))
	if rounds <= 0 {
		rounds = 3
	}
	return rounds
}
