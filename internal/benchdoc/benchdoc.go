// Package benchdoc writes benchmark results into docs/benchmarks.md, one
// named section per benchmark between <!-- bench:NAME --> markers, so each
// benchmark can be re-run on its own without losing the others' results.
package benchdoc

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

const header = "# Benchmarks\n\nEach section is written by `make bench` (scripts/bench.sh); numbers are\nmeasured, never asserted by tests.\n"

// Path finds docs/benchmarks.md from a directory inside the repository.
func Path(from string) (string, error) {
	dir := from
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "docs", "benchmarks.md"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", from)
		}
		dir = parent
	}
}

// WriteSection replaces (or appends) section name of the file at path.
func WriteSection(path, name, body string) error {
	old, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(old), "# Benchmarks") {
		old = []byte(header)
	}
	begin, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	section := begin + "\n" + strings.TrimSpace(body) + "\n" + end
	doc := string(old)
	if i, j := strings.Index(doc, begin), strings.Index(doc, end); i >= 0 && j > i {
		doc = doc[:i] + section + doc[j+len(end):]
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section + "\n"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// Machine describes the host for a report.
func Machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kv, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d cores, host kernel %s", cpu, runtime.NumCPU(), strings.TrimSpace(string(kv)))
}
