package agent

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func fsTestRoot(t *testing.T) (root, home string) {
	t.Helper()
	root = t.TempDir()
	home = filepath.Join(root, "home", "dev")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1000::"+home+":/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\ndev:x:1000:\n"), 0o644)
	os.MkdirAll(home, 0o755)
	return root, home
}

func TestFSOps(t *testing.T) {
	root, home := fsTestRoot(t)
	do := func(p proto.FSParams) proto.FSResult {
		t.Helper()
		p.User = "dev"
		return fsOp(root, p)
	}
	// mkdir: relative to the user's home, parents made, owned by the user.
	res := do(proto.FSParams{Action: proto.FSMkdir, Path: "a/b"})
	if res.Err != nil || len(res.Entries) != 1 || res.Entries[0].Path != home+"/a/b" || res.Entries[0].Type != "dir" {
		t.Fatalf("mkdir: %+v", res)
	}
	if res.Entries[0].Owner != "dev" || res.Entries[0].Group != "dev" || res.Home != home || res.UID != 1000 {
		t.Fatalf("mkdir owner: %+v", res)
	}
	if res := do(proto.FSParams{Action: proto.FSMkdir, Path: "a/b"}); res.Err == nil || res.Err.Code != proto.FSExists {
		t.Fatalf("mkdir again: %+v", res.Err)
	}
	os.WriteFile(filepath.Join(home, "a/b/f.txt"), []byte("hello"), 0o640)
	os.Symlink("f.txt", filepath.Join(home, "a/b/link"))

	res = do(proto.FSParams{Action: proto.FSStat, Path: "a/b/f.txt"})
	if res.Err != nil || res.Entries[0].Size != 5 || res.Entries[0].Type != "file" || res.Entries[0].Permissions != "-rw-r-----" {
		t.Fatalf("stat: %+v", res)
	}
	res = do(proto.FSParams{Action: proto.FSStat, Path: home + "/a/b/link"})
	if res.Err != nil || res.Entries[0].Type != "symlink" || res.Entries[0].Target != "f.txt" {
		t.Fatalf("stat symlink: %+v", res)
	}
	if res := do(proto.FSParams{Action: proto.FSStat, Path: "nope"}); res.Err == nil || res.Err.Code != proto.FSNotFound {
		t.Fatalf("stat missing: %+v", res.Err)
	}

	// list: depth 1 sees a only; depth 3 everything.
	res = do(proto.FSParams{Action: proto.FSList, Path: "."})
	if res.Err != nil || len(res.Entries) != 1 || res.Entries[0].Name != "a" {
		t.Fatalf("list depth 1: %+v", res)
	}
	res = do(proto.FSParams{Action: proto.FSList, Path: home, Depth: 3})
	var names []string
	for _, e := range res.Entries {
		names = append(names, strings.TrimPrefix(e.Path, home+"/"))
	}
	if got := strings.Join(names, ","); got != "a,a/b,a/b/f.txt,a/b/link" {
		t.Fatalf("list depth 3: %s", got)
	}
	if res := do(proto.FSParams{Action: proto.FSList, Path: "a/b/f.txt"}); res.Err == nil || res.Err.Code != proto.FSInvalid {
		t.Fatalf("list a file: %+v", res.Err)
	}

	// move into a directory that does not exist yet.
	res = do(proto.FSParams{Action: proto.FSMove, Path: "a/b/f.txt", Dest: "c/g.txt", Own: true})
	if res.Err != nil || res.Entries[0].Path != home+"/c/g.txt" || res.Entries[0].Owner != "dev" {
		t.Fatalf("move: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(home, "a/b/f.txt")); !os.IsNotExist(err) {
		t.Fatalf("source still there: %v", err)
	}
	if res := do(proto.FSParams{Action: proto.FSMove, Path: "missing", Dest: "x"}); res.Err == nil || res.Err.Code != proto.FSNotFound {
		t.Fatalf("move missing: %+v", res.Err)
	}

	// remove: recursive; a missing path is not found.
	if res := do(proto.FSParams{Action: proto.FSRemove, Path: "a"}); res.Err != nil {
		t.Fatalf("remove: %+v", res.Err)
	}
	if _, err := os.Stat(filepath.Join(home, "a")); !os.IsNotExist(err) {
		t.Fatalf("a still there: %v", err)
	}
	if res := do(proto.FSParams{Action: proto.FSRemove, Path: "a"}); res.Err == nil || res.Err.Code != proto.FSNotFound {
		t.Fatalf("remove again: %+v", res.Err)
	}

	if res := fsOp(root, proto.FSParams{Action: proto.FSStat, Path: "x", User: "nobody"}); res.Err == nil || res.Err.Code != proto.FSInvalid {
		t.Fatalf("unknown user: %+v", res.Err)
	}
	if res := do(proto.FSParams{Action: "chmod", Path: "x"}); res.Err == nil || res.Err.Code != proto.FSInvalid {
		t.Fatalf("unknown action: %+v", res.Err)
	}
}

func TestWatchOverAgent(t *testing.T) {
	dir := t.TempDir()
	c := connectAgent(t, &Server{}, nil)
	st, _, err := c.Open(testCtx(t), proto.OpWatch, proto.WatchParams{Path: dir, Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	br := bufio.NewReader(st)
	next := func() proto.WatchEvent {
		t.Helper()
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		var ev proto.WatchEvent
		if err := proto.ReadLine(br, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	if ev := next(); ev != (proto.WatchEvent{Name: "sub", Type: proto.WatchCreate}) {
		t.Fatalf("mkdir: %+v", ev)
	}
	// The new directory is watched too (recursive).
	os.WriteFile(filepath.Join(dir, "sub/f"), []byte("x"), 0o644)
	if ev := next(); ev != (proto.WatchEvent{Name: "sub/f", Type: proto.WatchCreate}) {
		t.Fatalf("create: %+v", ev)
	}
	if ev := next(); ev != (proto.WatchEvent{Name: "sub/f", Type: proto.WatchWrite}) {
		t.Fatalf("write: %+v", ev)
	}
	// Staged uploads are invisible until renamed into place.
	os.Mkdir(filepath.Join(dir, proto.UploadDirPrefix+"1"), 0o755)
	os.WriteFile(filepath.Join(dir, proto.UploadDirPrefix+"1/up"), []byte("x"), 0o644)
	os.Rename(filepath.Join(dir, proto.UploadDirPrefix+"1/up"), filepath.Join(dir, "up"))
	if ev := next(); ev != (proto.WatchEvent{Name: "up", Type: proto.WatchCreate}) {
		t.Fatalf("upload: %+v", ev)
	}
	os.Remove(filepath.Join(dir, "sub/f"))
	if ev := next(); ev != (proto.WatchEvent{Name: "sub/f", Type: proto.WatchRemove}) {
		t.Fatalf("remove: %+v", ev)
	}

	if _, _, err := c.Open(testCtx(t), proto.OpWatch, proto.WatchParams{Path: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("watch of a missing directory accepted")
	}
}

func TestExecReportsPID(t *testing.T) {
	c := connectAgent(t, &Server{}, nil)
	st, err := c.OpenExec(testCtx(t), proto.ExecRequest{Argv: []string{"/bin/sh", "-c", "echo $$"}, ReportPID: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, p, err := proto.ReadFrame(st)
	if err != nil || typ != proto.FramePID || len(p) != 4 {
		t.Fatalf("first frame %d %x %v", typ, p, err)
	}
	pid := int(p[0])<<24 | int(p[1])<<16 | int(p[2])<<8 | int(p[3])
	typ, out, err := proto.ReadFrame(st)
	if err != nil || typ != proto.FrameStdout || strings.TrimSpace(string(out)) != strconv.Itoa(pid) {
		t.Fatalf("stdout %d %q (pid %d) %v", typ, out, pid, err)
	}
}
