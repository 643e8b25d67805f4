package agent

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/banger-dev/banger/internal/agent/proto"
)

func init() { ops[proto.OpCopyIn] = (*Server).handleCopyIn }

// copyIdle bounds how long a copy_in stream may stay silent: a host that
// stalls (rather than disconnects) must not pin an extraction forever.
const copyIdle = 2 * time.Minute

// copyMu serialises copies into the same directory: a second import
// waits for the first and then finds the directory taken, instead of
// interleaving with it.
var copyMu sync.Map // cleaned Dir -> *sync.Mutex

func (s *Server) handleCopyIn(st net.Conn, req proto.Request) {
	var p proto.CopyInParams
	if err := json.Unmarshal(req.Params, &p); err != nil {
		proto.WriteLine(st, proto.Response{Error: "copy_in: bad params: " + err.Error()})
		return
	}
	var into *intoTarget
	if p.Into != "" {
		t, err := resolveInto(p)
		if err != nil {
			proto.WriteLine(st, proto.Response{Error: err.Error()})
			return
		}
		into, p.Dir, p.Fresh = &t, t.root, false
	}
	dir, err := copyTarget(p)
	if err != nil {
		proto.WriteLine(st, proto.Response{Error: err.Error()})
		return
	}
	mu, _ := copyMu.LoadOrStore(dir, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	x, err := openExtract(dir, p)
	if err != nil {
		proto.WriteLine(st, proto.Response{Error: err.Error()})
		return
	}
	x.into = into
	if err := proto.WriteLine(st, proto.Response{OK: true}); err != nil {
		x.abort()
		return
	}
	br := bufio.NewReaderSize(idleReader{st}, 256<<10)
	res, err := x.run(br)
	if err != nil {
		x.abort()
		s.log().Warn("copy_in failed", "dir", dir, "err", err)
		proto.WriteLine(st, proto.CopyResult{Entries: res.Entries, Bytes: res.Bytes, Error: err.Error()})
		// Keep reading (for a while) so the host's writer does not block
		// on a full window before it sees the error.
		br.Discard(br.Buffered())
		st.SetReadDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, st)
		return
	}
	s.log().Info("copy_in", "dir", dir, "entries", res.Entries, "bytes", res.Bytes)
	proto.WriteLine(st, res)
}

// copyTarget validates the request's directory.
func copyTarget(p proto.CopyInParams) (string, error) {
	dir := filepath.Clean(p.Dir)
	if !filepath.IsAbs(p.Dir) || (p.Fresh && dir == "/") {
		return "", fmt.Errorf("copy_in: target %q must be an absolute path (below / for a fresh copy)", p.Dir)
	}
	return dir, nil
}

// run extracts the archive, checks the host's trailer and finishes the
// tree. On error the caller aborts.
func (x *extraction) run(br *bufio.Reader) (proto.CopyResult, error) {
	if err := x.readAll(tar.NewReader(br)); err != nil {
		return x.result(), err
	}
	var tl proto.CopyTrailer
	line, err := br.ReadBytes('\n')
	if err != nil || json.Unmarshal(bytes.TrimSpace(line), &tl) != nil || !tl.Done {
		return x.result(), errors.New("the archive ended without the host's trailer: the copy was cut short")
	}
	if tl.Entries != x.entries {
		return x.result(), fmt.Errorf("received %d entries, the host sent %d", x.entries, tl.Entries)
	}
	if err := x.finish(); err != nil {
		return x.result(), err
	}
	return x.result(), nil
}

func (x *extraction) readAll(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// idleReader renews the stream's read deadline before every read.
type idleReader struct{ st net.Conn }

func (r idleReader) Read(p []byte) (int, error) {
	r.st.SetReadDeadline(time.Now().Add(copyIdle))
	return r.st.Read(p)
}

// openExtract prepares the extraction root: for a fresh copy a hidden
// sibling of dir that is renamed into place at the end, else dir itself.
func openExtract(dir string, p proto.CopyInParams) (*extraction, error) {
	mode := os.FileMode(p.DirMode) & os.ModePerm
	if mode == 0 {
		mode = 0o700
	}
	x := &extraction{final: dir, fresh: p.Fresh, mode: mode, start: time.Now(), umask: currentUmask(),
		index: map[string][]indexEntry{}}
	root := dir
	if p.Fresh {
		if _, err := os.Lstat(dir); err == nil {
			return nil, fmt.Errorf("%s already exists in the guest", dir)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".banger-copy-")
		if err != nil {
			return nil, err
		}
		root, x.staging = tmp, tmp
	} else if p.Into != "" {
		// vm cp: the target directory exists (resolveInto); nothing is
		// created above the copy.
	} else if err := os.MkdirAll(dir, mode); err != nil {
		return nil, err
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		x.abort()
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	x.dirs = newDirCache(fd)
	return x, nil
}

// finish applies deferred directory modes, writes git indexes and, for
// a fresh copy, moves the tree into place.
func (x *extraction) finish() error {
	if err := x.applyDirModes(); err != nil {
		return err
	}
	if err := x.writeIndexes(); err != nil {
		return err
	}
	if !x.fresh {
		x.dirs.closeAll()
		return nil
	}
	err := unix.Fchmod(x.dirs.root(), uint32(x.mode))
	x.dirs.closeAll()
	if err != nil {
		return err
	}
	err = unix.Renameat2(unix.AT_FDCWD, x.staging, unix.AT_FDCWD, x.final, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s appeared in the guest during the copy", x.final)
	}
	if err != nil {
		return fmt.Errorf("move the copy into place: %w", err)
	}
	x.staging = ""
	return nil
}

// abort releases everything and, for a fresh copy, removes the partial
// tree so that a failed copy leaves nothing behind.
func (x *extraction) abort() {
	if x.dirs != nil {
		x.dirs.closeAll()
	}
	if x.staging != "" {
		os.RemoveAll(x.staging)
		x.staging = ""
	}
}

func (x *extraction) result() proto.CopyResult {
	return proto.CopyResult{Entries: x.entries, Bytes: x.bytes}
}

// currentUmask reads the process umask without changing it (umask(2)
// would, for a moment, for every goroutine starting a process).
func currentUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(n)
				}
			}
		}
	}
	return 0o777 // unknown: chmod every file
}
