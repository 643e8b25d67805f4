package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for n, c := range files {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const deb822Sources = `# third-party repo that also calls its component "main"
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://ftp.example.org/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 xyz
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
`

func TestMirrorFromDeb822(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"etc/apt/sources.list.d/debian.sources":           deb822Sources,
		"etc/apt/sources.list.d/google.list.disabled-foo": "deb http://wrong.example/debian bookworm main\n",
	})
	src := readHostSources(root)
	if got := findMirror(src, "bookworm"); got != "http://ftp.example.org/debian" {
		t.Errorf("main mirror = %q", got)
	}
	if got := findMirror(src, "bookworm-security"); got != "http://security.example.org/debian-security" {
		t.Errorf("security mirror = %q", got)
	}
	if got := findMirror(src, "trixie"); got != "" {
		t.Errorf("trixie mirror = %q, want none", got)
	}
}

func TestMirrorFromOneLineFormat(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"etc/apt/sources.list": `# comment
deb-src http://src.example/debian bookworm main
deb cdrom:[Debian GNU/Linux 12]/ bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://first.example/debian bookworm contrib
deb [ arch=amd64 ] http://mirror.example/debian bookworm main non-free-firmware # trailing
deb http://later.example/debian bookworm main
`,
		// sources.list is read before sources.list.d.
		"etc/apt/sources.list.d/a.sources": "Types: deb\nURIs: http://dot-d.example/debian\nSuites: bookworm\nComponents: main\n",
	})
	if got := findMirror(readHostSources(root), "bookworm"); got != "http://mirror.example/debian" {
		t.Errorf("mirror = %q", got)
	}
}

func TestMirrorOrderInSourcesListD(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"etc/apt/sources.list.d/b.list":    "deb http://b.example/debian bookworm main\n",
		"etc/apt/sources.list.d/a.sources": "Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\nComponents: main\n",
	})
	if got := findMirror(readHostSources(root), "bookworm"); got != "http://a.example/debian" {
		t.Errorf("mirror = %q", got)
	}
	if got := findMirror(readHostSources(t.TempDir()), "bookworm"); got != "" {
		t.Errorf("empty root gave %q", got)
	}
}

func TestGoldenSourcesAndArgs(t *testing.T) {
	got := goldenSources(BuildOptions{Suite: "bookworm", Mirror: "http://m.example/debian"})
	want := []string{"deb http://m.example/debian bookworm main", "deb http://m.example/debian bookworm-updates main"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("sources = %q", got)
	}
	got = goldenSources(BuildOptions{Suite: "bookworm", Mirror: "http://m/debian", SecurityMirror: "http://s/debian-security"})
	if len(got) != 3 || got[2] != "deb http://s/debian-security bookworm-security main" {
		t.Errorf("sources = %q", got)
	}
	if got := goldenSources(BuildOptions{Suite: "sid", Mirror: "http://m/debian"}); len(got) != 1 {
		t.Errorf("sid sources = %q", got)
	}
	args := mmdebstrapArgs("bookworm", GoldenRecipe.packages(), want, true)
	joined := strings.Join(args, " ")
	for _, s := range []string{"--variant=apt", "--format=tar", "--hook-dir=" + eatmydataHooks, "openssh-server", "--dpkgopt=path-exclude=/usr/share/doc/*"} {
		if !strings.Contains(joined, s) {
			t.Errorf("args lack %q: %s", s, joined)
		}
	}
	if !strings.HasSuffix(joined, "bookworm - "+want[0]+" "+want[1]) {
		t.Errorf("args end = %s", joined)
	}
}

func TestLogTail(t *testing.T) {
	var msgs []string
	var log strings.Builder
	lt := &logTail{w: &log, progress: func(m string) { msgs = append(msgs, m) }}
	lt.Write([]byte("I: chroot architecture amd64\nW: warn"))
	lt.Write([]byte("ing\nI: success"))
	lt.flush()
	if len(msgs) != 2 || msgs[1] != "mmdebstrap: success" {
		t.Errorf("progress = %q", msgs)
	}
	if !strings.Contains(lt.last(), "W: warning") || log.Len() == 0 {
		t.Errorf("tail = %q", lt.last())
	}
}
