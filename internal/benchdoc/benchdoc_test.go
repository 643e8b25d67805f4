package benchdoc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteSectionReplacesOnlyItsOwn(t *testing.T) {
	p := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	for _, s := range [][2]string{{"a", "first A"}, {"b", "only B"}, {"a", "second A"}} {
		if err := WriteSection(p, s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	doc := string(b)
	if !strings.HasPrefix(doc, "# Benchmarks") || strings.Contains(doc, "first A") ||
		!strings.Contains(doc, "second A") || !strings.Contains(doc, "only B") || strings.Count(doc, "<!-- bench:a -->") != 1 {
		t.Fatalf("doc:\n%s", doc)
	}
	if strings.Index(doc, "second A") > strings.Index(doc, "only B") {
		t.Error("section a moved after b")
	}
}

func TestPathFindsRepoRoot(t *testing.T) {
	wd, _ := os.Getwd()
	p, err := Path(wd)
	if err != nil || !strings.HasSuffix(p, filepath.Join("docs", "benchmarks.md")) {
		t.Fatalf("Path = %q, %v", p, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(p)), "go.mod")); err != nil {
		t.Errorf("%s is not beside go.mod", p)
	}
}
