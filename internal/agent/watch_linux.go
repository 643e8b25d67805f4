package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func init() {
	ops[proto.OpWatch] = func(s *Server, st net.Conn, req proto.Request) {
		var p proto.WatchParams
		if err := decodeParams(req, &p); err != nil {
			replyData(st, nil, err)
			return
		}
		w, err := newWatcher("/", p)
		if err != nil {
			proto.WriteLine(st, proto.Response{Error: err.Error()})
			return
		}
		defer w.close()
		if proto.WriteLine(st, proto.Response{OK: true}) != nil {
			return
		}
		// The host ends the watch by closing its side.
		go func() {
			io.Copy(io.Discard, st)
			w.close()
		}()
		w.run(func(ev proto.WatchEvent) error { return proto.WriteLine(st, ev) })
	}
}

func decodeParams(req proto.Request, v any) error {
	if err := json.Unmarshal(req.Params, v); err != nil {
		return fmt.Errorf("%s: bad params: %w", req.Op, err)
	}
	return nil
}

// maxWatches bounds the directories one recursive watch adds, below the
// kernel's default per-user limit (8192).
const maxWatches = 4096

// watcher is one inotify instance over a directory (and, recursive, the
// directories below it, including those created later).
type watcher struct {
	f         *os.File // the inotify fd, non-blocking: Close ends a Read
	fd        int      // f's descriptor (f.Fd() would make it blocking)
	root      string
	recursive bool
	dirs      map[int32]string // watch descriptor -> directory
	closeOnce sync.Once
}

func newWatcher(root string, p proto.WatchParams) (*watcher, error) {
	a := account{home: "/root"}
	if p.User != "" {
		var err error
		if a, err = lookupAccount(root, p.User); err != nil {
			return nil, err
		}
	}
	dir := userPath(a, p.Path)
	if dir == "" {
		return nil, fmt.Errorf("watch: no path given")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("watch: %s is not a directory", dir)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("watch: inotify: %w", err)
	}
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, root: dir, recursive: p.Recursive, dirs: map[int32]string{}}
	if err := w.add(dir); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

const watchMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_DELETE | unix.IN_MOVED_FROM |
	unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW

// add watches dir and, for a recursive watcher, the directories below it.
func (w *watcher) add(dir string) error {
	if len(w.dirs) >= maxWatches {
		return fmt.Errorf("watch: more than %d directories", maxWatches)
	}
	wd, err := unix.InotifyAddWatch(w.fd, dir, watchMask)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	w.dirs[int32(wd)] = dir
	if !w.recursive {
		return nil
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			if err := w.add(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *watcher) close() { w.closeOnce.Do(func() { w.f.Close() }) }

// run sends events until the watcher is closed or send fails.
func (w *watcher) run(send func(proto.WatchEvent) error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			dir, ok := w.dirs[ev.Wd]
			if !ok {
				continue
			}
			if ev.Mask&unix.IN_IGNORED != 0 {
				delete(w.dirs, ev.Wd)
				continue
			}
			name := unix.ByteSliceToString(nameBytes)
			path := filepath.Join(dir, name)
			if ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 && ev.Mask&unix.IN_ISDIR != 0 && w.recursive {
				w.add(path) // beyond maxWatches, the new directory is not watched
			}
			typ := watchType(ev.Mask)
			if typ == "" || name == "" {
				continue
			}
			rel, err := filepath.Rel(w.root, path)
			if err != nil || staging(rel) {
				continue
			}
			if send(proto.WatchEvent{Name: rel, Type: typ}) != nil {
				return
			}
		}
	}
}

// staging reports a path inside (or naming) a directory banger stages
// a copy or an upload in.
func staging(rel string) bool {
	for _, el := range strings.Split(rel, "/") {
		if strings.HasPrefix(el, proto.UploadDirPrefix) || strings.HasPrefix(el, ".banger-copy-") {
			return true
		}
	}
	return false
}

func watchType(mask uint32) string {
	switch {
	case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		return proto.WatchCreate
	case mask&unix.IN_MODIFY != 0:
		return proto.WatchWrite
	case mask&unix.IN_DELETE != 0:
		return proto.WatchRemove
	case mask&unix.IN_MOVED_FROM != 0:
		return proto.WatchRename
	case mask&unix.IN_ATTRIB != 0:
		return proto.WatchChmod
	}
	return ""
}
