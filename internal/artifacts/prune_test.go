package artifacts

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/store"
)

// Initramfs files built for other agents go once they are an hour old;
// a younger one may be another daemon's (a second build under test
// sharing the cache) and stays, as does the one just built.
func TestPruneInitrdsKeepsYoungOnes(t *testing.T) {
	s, paths := newTestService(t)
	dir := filepath.Join(paths.CacheDir, "initrd")
	os.MkdirAll(dir, 0o700)
	k := store.Kernel{Name: "debian-cloud", Release: "6.1.0-1-cloud-amd64"}
	name := func(sum string) string { return filepath.Join(dir, k.Name+"-"+k.Release+"-"+sum+".cpio") }
	keep, young, old := name("aaaaaaaaaaaa"), name("bbbbbbbbbbbb"), name("cccccccccccc")
	for _, p := range []string{keep, young, old} {
		if err := os.WriteFile(p, []byte("cpio"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	twoHours := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, twoHours, twoHours)
	os.Chtimes(keep, twoHours, twoHours)
	s.pruneInitrds(keep, k)
	for p, want := range map[string]bool{keep: true, young: true, old: false} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
