package workspace

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent"
	"github.com/banger-dev/banger/internal/agent/client"
)

// testRepo is a real git repository built by a test.
type testRepo struct {
	t   *testing.T
	dir string
}

// gitEnv isolates test git runs from the machine's and user's config.
var gitEnv = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
	"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_AUTHOR_DATE=2024-01-01T00:00:00Z",
	"GIT_COMMITTER_DATE=2024-01-01T00:00:00Z"}

func TestMain(m *testing.M) {
	// The user's global config (excludes, hooks, identity) must not
	// leak into the tests: a throwaway HOME and XDG config.
	home, err := os.MkdirTemp("", "ws-home")
	if err != nil {
		panic(err)
	}
	os.Setenv("HOME", home)
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	for _, kv := range gitEnv {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}

func newRepo(t *testing.T) *testRepo {
	t.Helper()
	r := &testRepo{t: t, dir: filepath.Join(t.TempDir(), "repo")}
	os.MkdirAll(r.dir, 0o755)
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	return runGit(r.t, r.dir, args...)
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v in %s: %v\n%s", args, dir, err, out)
	}
	return string(out)
}

func (r *testRepo) write(name, body string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		r.t.Fatal(err)
	}
	os.Chmod(p, mode)
}

func (r *testRepo) commitAll(msg string) {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
}

// plan makes a plan of r and fails the test on error.
func (r *testRepo) plan(o Options) *Plan {
	r.t.Helper()
	o.Repo = r.dir
	p, err := Make(context.Background(), o)
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

func paths(files []File) string {
	var s []string
	for _, f := range files {
		s = append(s, f.Path)
	}
	return strings.Join(s, "|")
}

// connectAgent serves an in-process agent (it runs on the test host).
func connectAgent(t *testing.T) *client.Client {
	t.Helper()
	host, guest := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&agent.Server{}).ServeConn(ctx, guest)
		close(done)
	}()
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	c, err := client.Connect(cctx, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
