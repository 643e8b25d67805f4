package envd

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	fspb "github.com/banger-dev/banger/proto/filesystem"
)

func TestFilesystem(t *testing.T) {
	codecs(t, func(t *testing.T, e *testEnv) {
		ctx := testCtx(t)
		dir := t.TempDir()
		mk, err := e.fs.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: dir + "/a/b"}))
		if err != nil || mk.Msg.GetEntry().GetType() != fspb.FileType_FILE_TYPE_DIRECTORY || mk.Msg.GetEntry().GetPath() != dir+"/a/b" {
			t.Fatalf("mkdir: %v %v", mk, err)
		}
		if _, err := e.fs.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: dir + "/a/b"})); codeOf(err) != connect.CodeAlreadyExists {
			t.Fatalf("mkdir again: %v", err)
		}
		os.WriteFile(dir+"/a/b/f.txt", []byte("hello"), 0o600)
		st, err := e.fs.Stat(ctx, connect.NewRequest(&fspb.StatRequest{Path: dir + "/a/b/f.txt"}))
		if err != nil {
			t.Fatal(err)
		}
		en := st.Msg.GetEntry()
		if en.GetName() != "f.txt" || en.GetSize() != 5 || en.GetType() != fspb.FileType_FILE_TYPE_FILE ||
			en.GetPermissions() != "-rw-------" || en.GetOwner() != "root" || en.GetModifiedTime().AsTime().IsZero() {
			t.Fatalf("stat: %+v", en)
		}
		if _, err := e.fs.Stat(ctx, connect.NewRequest(&fspb.StatRequest{Path: dir + "/nope"})); codeOf(err) != connect.CodeNotFound {
			t.Fatalf("stat missing: %v", err)
		}
		ls, err := e.fs.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: dir, Depth: 3}))
		if err != nil || len(ls.Msg.GetEntries()) != 3 || ls.Msg.GetEntries()[2].GetPath() != dir+"/a/b/f.txt" {
			t.Fatalf("list: %v %v", ls, err)
		}
		mv, err := e.fs.Move(ctx, connect.NewRequest(&fspb.MoveRequest{Source: dir + "/a/b/f.txt", Destination: dir + "/c/g.txt"}))
		if err != nil || mv.Msg.GetEntry().GetPath() != dir+"/c/g.txt" {
			t.Fatalf("move: %v %v", mv, err)
		}
		if _, err := e.fs.Remove(ctx, connect.NewRequest(&fspb.RemoveRequest{Path: dir + "/a"})); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir + "/a"); !os.IsNotExist(err) {
			t.Fatalf("a not removed: %v", err)
		}
		if _, err := e.fs.Remove(ctx, connect.NewRequest(&fspb.RemoveRequest{Path: dir + "/a"})); codeOf(err) != connect.CodeNotFound {
			t.Fatalf("remove missing: %v", err)
		}
		if _, err := e.fs.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: dir + "/c/g.txt"})); codeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("list a file: %v", err)
		}
	})
}

func TestWatchDir(t *testing.T) {
	codecs(t, func(t *testing.T, e *testEnv) {
		ctx := testCtx(t)
		dir := t.TempDir()
		s, err := e.fs.WatchDir(ctx, connect.NewRequest(&fspb.WatchDirRequest{Path: dir, Recursive: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if !s.Receive() || s.Msg().GetStart() == nil {
			t.Fatalf("no start event: %v", s.Err())
		}
		os.Mkdir(dir+"/sub", 0o755)
		next := func() *fspb.FilesystemEvent {
			t.Helper()
			for s.Receive() {
				if ev := s.Msg().GetFilesystem(); ev != nil {
					return ev
				}
			}
			t.Fatalf("stream ended: %v", s.Err())
			return nil
		}
		if ev := next(); ev.GetName() != "sub" || ev.GetType() != fspb.EventType_EVENT_TYPE_CREATE {
			t.Fatalf("mkdir event: %v", ev)
		}
		time.Sleep(50 * time.Millisecond) // the agent watches the new directory
		os.WriteFile(dir+"/sub/x", nil, 0o644)
		if ev := next(); ev.GetName() != "sub/x" || ev.GetType() != fspb.EventType_EVENT_TYPE_CREATE {
			t.Fatalf("create event: %v", ev)
		}
		os.Rename(dir+"/sub/x", dir+"/y")
		if ev := next(); ev.GetName() != "sub/x" || ev.GetType() != fspb.EventType_EVENT_TYPE_RENAME {
			t.Fatalf("rename event: %v", ev)
		}

		err = streamErr(e.fs.WatchDir(ctx, connect.NewRequest(&fspb.WatchDirRequest{Path: dir + "/missing"})))
		if codeOf(err) != connect.CodeNotFound {
			t.Fatalf("watch a missing directory: %v", err)
		}
	})
}

func TestPolledWatcher(t *testing.T) {
	e := newTestEnv(t, connect.WithProtoJSON())
	ctx := testCtx(t)
	dir := t.TempDir()
	cw, err := e.fs.CreateWatcher(ctx, connect.NewRequest(&fspb.CreateWatcherRequest{Path: dir}))
	if err != nil {
		t.Fatal(err)
	}
	id := cw.Msg.GetWatcherId()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	var events []*fspb.FilesystemEvent
	waitFor(t, func() bool {
		r, err := e.fs.GetWatcherEvents(ctx, connect.NewRequest(&fspb.GetWatcherEventsRequest{WatcherId: id}))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, r.Msg.GetEvents()...)
		return len(events) >= 2
	})
	if events[0].GetName() != "f" || events[0].GetType() != fspb.EventType_EVENT_TYPE_CREATE || events[1].GetType() != fspb.EventType_EVENT_TYPE_WRITE {
		t.Fatalf("events: %v", events)
	}
	if _, err := e.fs.RemoveWatcher(ctx, connect.NewRequest(&fspb.RemoveWatcherRequest{WatcherId: id})); err != nil {
		t.Fatal(err)
	}
	_, err = e.fs.GetWatcherEvents(ctx, connect.NewRequest(&fspb.GetWatcherEventsRequest{WatcherId: id}))
	if codeOf(err) != connect.CodeNotFound {
		t.Fatalf("events of a removed watcher: %v", err)
	}
}
