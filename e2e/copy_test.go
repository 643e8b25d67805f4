package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testCopyAndLogs copies a directory into the running VM name and back
// (vm cp, through the agent), checks modes in the guest with vm exec and
// compares the round trip, then reads the console log (vm logs). It
// leaves the guest's /root untouched.
func testCopyAndLogs(t *testing.T, e *env, name string) {
	src := filepath.Join(t.TempDir(), "payload")
	must(t, os.MkdirAll(filepath.Join(src, "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "bin", "tool"), []byte("#!/bin/sh\necho tool-ran\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "secret"), []byte("s3cret\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(src, "big"), []byte(strings.Repeat("0123456789abcdef", 1<<16)), 0o644)) // 1 MiB
	must(t, os.Symlink("bin/tool", filepath.Join(src, "link")))
	old := time.Date(2020, 2, 20, 20, 20, 20, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(src, "secret"), old, old))
	os.Chmod(filepath.Join(src, "secret"), 0o600)
	os.Chmod(filepath.Join(src, "bin"), 0o750)

	e.must("vm", "cp", src, name+":/tmp/")
	got := e.must("vm", "exec", name, "--", "sh", "-c",
		"cd /tmp/payload && stat -c '%n %a %U' bin bin/tool secret big && readlink link && ./link && stat -c %Y secret").out
	want := fmt.Sprintf("bin 750 root\nbin/tool 755 root\nsecret 600 root\nbig 644 root\nbin/tool\ntool-ran\n%d\n", old.Unix())
	if got != want {
		t.Errorf("guest sees\n%s\nwant\n%s", got, want)
	}

	back := filepath.Join(t.TempDir(), "back")
	e.must("vm", "cp", name+":/tmp/payload", back)
	if a, b := listing(t, src), listing(t, back); a != b {
		t.Errorf("round trip differs:\nsent\n%s\ngot back\n%s", a, b)
	}
	if r := e.banger("vm", "cp", name+":/tmp/nope", back); r.code != 1 || !strings.Contains(r.err, "/tmp/nope: no such file or directory in the guest") {
		t.Errorf("missing guest path: exit %d, stderr %q", r.code, r.err)
	}
	if r := e.banger("vm", "cp", src, name+":/no/such/dir"); r.code != 1 || !strings.Contains(r.err, "parent directory /no/such does not exist") {
		t.Errorf("missing guest parent: exit %d, stderr %q", r.code, r.err)
	}
	e.must("vm", "exec", name, "--", "rm", "-rf", "/tmp/payload")

	logs := e.must("vm", "logs", name).out
	if lines := strings.SplitAfterN(logs, "\n", 13); len(lines) > 12 {
		t.Logf("console log starts:\n%s", strings.Join(lines[:12], ""))
	}
	if !regexp.MustCompile(`(?m)^\[ *\d+\.\d+\] banger-agent: init starting`).MatchString(logs) {
		t.Errorf("vm logs lacks the boot lines:\n%s", logs)
	}
	if tail := e.must("vm", "logs", name, "--tail", "2").out; strings.Count(tail, "\n") != 2 || !strings.HasSuffix(logs, tail) {
		t.Errorf("--tail 2: %q", tail)
	}
}

// listing describes a tree: each entry's path, type, mode and contents
// (or link target), and file mtimes.
func listing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %d bytes sum %d mtime %d", len(c), sum(c), fi.ModTime().Unix())
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func sum(b []byte) (s uint64) {
	for i, c := range b {
		s += uint64(c) * uint64(i+1)
	}
	return s
}
