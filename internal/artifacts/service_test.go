package artifacts

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/config"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/store"
)

// newTestService is a service on temporary directories and a real store,
// with the default kernel registered (a stand-in directory).
func newTestService(t *testing.T, tune ...func(*config.Config)) (*Service, config.Paths) {
	t.Helper()
	root := t.TempDir()
	paths := config.Paths{ConfigDir: filepath.Join(root, "config"), StateDir: filepath.Join(root, "state"),
		CacheDir: filepath.Join(root, "cache"), RuntimeDir: filepath.Join(root, "run")}
	for _, d := range []string{paths.StateDir, paths.CacheDir, paths.ImageDir(), paths.KernelDir()} {
		must(t, os.MkdirAll(d, 0o700))
	}
	cfg, _ := config.Load(filepath.Join(root, "none.toml"))
	for _, f := range tune {
		f(&cfg)
	}
	st, err := store.Open(context.Background(), paths.Database())
	must(t, err)
	t.Cleanup(func() { st.Close() })
	kdir := filepath.Join(paths.KernelDir(), "stand-in")
	must(t, os.MkdirAll(kdir, 0o700))
	must(t, st.PutKernel(context.Background(), store.Kernel{Name: config.DefaultKernelName, Dir: kdir, Release: "6.1-test", Source: "test"}))
	s := New(Deps{Paths: paths, Config: cfg, Log: slog.New(slog.DiscardHandler), Store: st})
	return s, paths
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ext4With makes a small ext4 image holding files (name → content) in a
// directory of its own, and returns its bytes.
func ext4With(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	for name, content := range files {
		p := filepath.Join(tree, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o755))
	}
	must(t, os.MkdirAll(tree, 0o755))
	img := filepath.Join(dir, "rootfs.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	must(t, err)
	return b
}

// events collects progress events.
type events struct {
	mu  sync.Mutex
	all []api.Progress
}

func (e *events) Report(p api.Progress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, p)
}

func (e *events) stage(s string) (n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.all {
		if p.Stage == s {
			n++
		}
	}
	return n
}

// assertNoImage checks that name is not registered and that the image
// store holds no file (not even a temporary one).
func assertNoImage(t *testing.T, s *Service, paths config.Paths, name string) {
	t.Helper()
	if _, err := s.store.GetImage(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("image %s registered after a failed register: %v", name, err)
	}
	if ents, _ := os.ReadDir(paths.ImageDir()); len(ents) != 0 {
		t.Errorf("image store holds %d file(s) after a failed register: %v", len(ents), ents[0].Name())
	}
}

var _ progress.Reporter = (*events)(nil)
