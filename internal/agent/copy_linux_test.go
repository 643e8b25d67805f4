package agent

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
)

// tarEntry is one entry a test sends.
type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
	pax              map[string]string
}

func fillWith(entries ...tarEntry) func(*client.TarWriter) error {
	return func(tw *client.TarWriter) error {
		for _, e := range entries {
			typ := e.typ
			if typ == 0 {
				typ = tar.TypeReg
			}
			mode := e.mode
			if mode == 0 {
				mode = 0o644
			}
			h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Size: int64(len(e.body)),
				Linkname: e.link, PAXRecords: e.pax, Format: tar.FormatPAX}
			if typ != tar.TypeReg {
				h.Size = 0
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write([]byte(e.body)); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestCopyInFreshTree(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "repo")
	odd := "dir with space/new\nline.txt"
	res, err := c.CopyIn(testCtx(t), proto.CopyInParams{Dir: dir, Fresh: true}, fillWith(
		tarEntry{name: "src/", typ: tar.TypeDir, mode: 0o750},
		tarEntry{name: "src/main.go", body: "package main\n"},
		tarEntry{name: "run.sh", body: "#!/bin/sh\n", mode: 0o755},
		tarEntry{name: odd, body: "odd"},
		tarEntry{name: "link", typ: tar.TypeSymlink, link: "src/main.go"},
		tarEntry{name: "dangling", typ: tar.TypeSymlink, link: "/nowhere/at/all"},
	))
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 6 || res.Bytes != int64(len("package main\n#!/bin/sh\nodd")) {
		t.Errorf("result %+v", res)
	}
	checkFile(t, filepath.Join(dir, "src/main.go"), "package main\n", 0o644)
	checkFile(t, filepath.Join(dir, "run.sh"), "#!/bin/sh\n", 0o755)
	checkFile(t, filepath.Join(dir, odd), "odd", 0o644)
	if l, _ := os.Readlink(filepath.Join(dir, "link")); l != "src/main.go" {
		t.Errorf("link -> %q", l)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "dangling")); l != "/nowhere/at/all" {
		t.Errorf("dangling -> %q", l)
	}
	if st, _ := os.Stat(filepath.Join(dir, "src")); st.Mode().Perm() != 0o750 {
		t.Errorf("src mode %v", st.Mode())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("root mode %v", st.Mode())
	}
	assertOnly(t, filepath.Join(parent, "a"), "repo")
}

func checkFile(t *testing.T, p, body string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil || string(b) != body {
		t.Errorf("%s: %q %v", p, b, err)
		return
	}
	if st, _ := os.Lstat(p); st.Mode().Perm() != mode || !st.Mode().IsRegular() {
		t.Errorf("%s: mode %v, want %v", p, st.Mode(), mode)
	}
}

// assertOnly checks dir holds exactly names: no staging directory left.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestCopyInRefusesEscapesAndLeavesNothing(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	outside := t.TempDir()
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dotdot", []tarEntry{{name: "ok", body: "x"}, {name: "../escape", body: "x"}}, "would leave the target"},
		{"inner dotdot", []tarEntry{{name: "a/../../escape", body: "x"}}, "not a clean relative path"},
		{"absolute", []tarEntry{{name: "/etc/evil", body: "x"}}, "not a clean relative path"},
		{"through symlink", []tarEntry{{name: "l", typ: tar.TypeSymlink, link: outside}, {name: "l/evil", body: "x"}}, "refusing to write through"},
		{"through relative symlink", []tarEntry{{name: "d/", typ: tar.TypeDir}, {name: "l", typ: tar.TypeSymlink, link: "d"}, {name: "l/x", body: "x"}}, "refusing to write through"},
		{"file over symlink", []tarEntry{{name: "l", typ: tar.TypeSymlink, link: filepath.Join(outside, "f")}, {name: "l", body: "x"}}, "file exists"},
		{"hardlink", []tarEntry{{name: "f", body: "x"}, {name: "h", typ: tar.TypeLink, link: "f"}}, "not supported"},
		{"device", []tarEntry{{name: "null", typ: tar.TypeChar}}, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "repo")
			_, err := c.CopyIn(testCtx(t), proto.CopyInParams{Dir: dir, Fresh: true}, fillWith(tc.entries...))
			var re *client.RequestError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a refusal mentioning %q", err, tc.want)
			}
			assertOnly(t, parent)
			assertOnly(t, outside)
		})
	}
	// The session survives refusals.
	if _, err := c.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestCopyInCutShortLeavesNothing(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	parent := t.TempDir()
	dir := filepath.Join(parent, "repo")
	boom := errors.New("host side failed")
	_, err := c.CopyIn(testCtx(t), proto.CopyInParams{Dir: dir, Fresh: true}, func(tw *client.TarWriter) error {
		if err := fillWith(tarEntry{name: "a", body: strings.Repeat("x", 1<<20)})(tw); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	assertOnly(t, parent)

	// A stream that ends at an entry boundary without the trailer is
	// incomplete too.
	st, _, err := c.Open(testCtx(t), proto.OpCopyIn, proto.CopyInParams{Dir: dir, Fresh: true})
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(st)
	tw.WriteHeader(&tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	st.Close()
	var res proto.CopyResult
	if err := proto.ReadLine(st, &res); err != nil || !strings.Contains(res.Error, "cut short") {
		t.Fatalf("reply %+v %v", res, err)
	}
	assertOnly(t, parent)
}

func TestCopyInFreshRefusesExistingAndSerialises(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	parent := t.TempDir()
	dir := filepath.Join(parent, "repo")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.CopyIn(testCtx(t), proto.CopyInParams{Dir: dir, Fresh: true}, func(tw *client.TarWriter) error {
				time.Sleep(50 * time.Millisecond)
				return fillWith(tarEntry{name: "who", body: fmt.Sprint(i)})(tw)
			})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !strings.Contains(err.Error(), "already exists") {
			t.Errorf("second copy: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d copies succeeded: %v", ok, errs)
	}
	assertOnly(t, parent, "repo")
}

func TestCopyInMergeReplacesButNeverFollows(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	home := t.TempDir()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("keep"), 0o600)
	os.MkdirAll(filepath.Join(home, ".config"), 0o700)
	os.WriteFile(filepath.Join(home, ".config", "old"), []byte("old"), 0o600)
	os.Symlink(secret, filepath.Join(home, ".config", "tok"))
	_, err := c.CopyIn(testCtx(t), proto.CopyInParams{Dir: home}, fillWith(
		tarEntry{name: ".config/old", body: "new", mode: 0o600},
		tarEntry{name: ".config/tok", body: "token", mode: 0o600},
	))
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(home, ".config", "old"), "new", 0o600)
	checkFile(t, filepath.Join(home, ".config", "tok"), "token", 0o600)
	if b, _ := os.ReadFile(secret); string(b) != "keep" {
		t.Errorf("wrote through a symlink: %q", b)
	}
	// A symlinked directory on the way is refused, not followed.
	os.Symlink(outside, filepath.Join(home, "gh"))
	_, err = c.CopyIn(testCtx(t), proto.CopyInParams{Dir: home}, fillWith(tarEntry{name: "gh/hosts.yml", body: "x"}))
	if err == nil || !strings.Contains(err.Error(), "refusing to write through") {
		t.Fatalf("err = %v", err)
	}
	assertOnly(t, outside, "secret")
}

func TestCopyInManyDirectories(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	dir := filepath.Join(t.TempDir(), "tree")
	var entries []tarEntry
	for i := 0; i < 3*maxOpenDirs; i++ {
		entries = append(entries, tarEntry{name: fmt.Sprintf("d%d/e/f%d", i%(2*maxOpenDirs), i), body: fmt.Sprint(i)})
	}
	res, err := c.CopyIn(testCtx(t), proto.CopyInParams{Dir: dir, Fresh: true}, fillWith(entries...))
	if err != nil || res.Entries != int64(len(entries)) {
		t.Fatalf("%+v %v", res, err)
	}
	for i := 0; i < 3*maxOpenDirs; i += 37 {
		checkFile(t, filepath.Join(dir, fmt.Sprintf("d%d/e/f%d", i%(2*maxOpenDirs), i)), fmt.Sprint(i), 0o644)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "a/b", ".git/index", "a b/\nc", "..a", "a.."} {
		if err := checkName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "./a", "a/.", "..", "a/../b", "a/.."} {
		if err := checkName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
