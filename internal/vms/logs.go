package vms

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/banger-dev/banger/internal/api"
)

// logPoll is how often a followed console log is checked for growth.
var logPoll = 250 * time.Millisecond

// SetLogPollForTest makes followed logs poll every d; it returns the
// restore function.
func SetLogPollForTest(d time.Duration) (restore func()) {
	old := logPoll
	logPoll = d
	return func() { logPoll = old }
}

// Logs streams a VM's console log (the guest's serial console, as
// the VMM writes it to console.log in the VM's directory): its last Tail
// lines, then with Follow whatever is appended, like tail -F: a new
// boot's log (QEMU truncates the file, a new file replaces it) is
// followed from its start, and following goes on while the VM is stopped
// until the client leaves. The bytes are the guest's, unfiltered: the
// CLI makes them safe for a terminal.
func (s *Service) Logs(ctx context.Context, p api.LogsParams) (*Session, error) {
	if p.Tail < 0 {
		return nil, api.Invalidf("--tail %d: must be zero (everything) or more", p.Tail)
	}
	vm, err := s.Resolve(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.consoleLog(vm.ID))
	if errors.Is(err, os.ErrNotExist) {
		if !p.Follow {
			return nil, api.NotFoundf("vm %s has no console log yet: it has not booted", vm.Name)
		}
		f = nil // follow: it appears at the next boot
	} else if err != nil {
		return nil, err
	}
	var off int64
	if f != nil && p.Tail > 0 {
		if off, err = tailOffset(f, p.Tail); err != nil {
			f.Close()
			return nil, err
		}
	}
	closeFile := func() {
		if f != nil {
			f.Close()
		}
	}
	return &Session{
		result: s.View(vm),
		abort:  closeFile,
		run: func(c Client) {
			go func() {
				defer c.Conn.Close()
				gone := make(chan struct{})
				if p.Follow {
					go func() {
						io.Copy(io.Discard, c.R) // the client sends nothing: EOF means it left
						close(gone)
					}()
				}
				followLog(c.Conn, f, off, s.consoleLog(vm.ID), p.Follow, gone, s.stopping)
			}()
		},
	}, nil
}

// followLog writes the file from off, then (follow) what is appended to
// the file at path, reopening it when it is replaced or truncated.
func followLog(w io.Writer, f *os.File, off int64, path string, follow bool, gone, stopping <-chan struct{}) {
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	if f != nil {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return
		}
	}
	t := time.NewTicker(logPoll)
	defer t.Stop()
	for {
		if f != nil {
			n, err := io.Copy(w, f)
			off += n
			if err != nil {
				return
			}
		}
		if !follow {
			return
		}
		select {
		case <-gone:
			return
		case <-stopping:
			return
		case <-t.C:
		}
		if nf, changed := reopenIfChanged(f, path, off); changed {
			if f != nil && nf != f {
				f.Close()
			}
			f, off = nf, 0
		}
	}
}

// reopenIfChanged opens path again when it is not f's file any more, or
// rewinds f when it has become shorter than what was read (QEMU truncates
// it at a new boot); changed says to read from the start of the result.
func reopenIfChanged(f *os.File, path string, off int64) (*os.File, bool) {
	pst, err := os.Stat(path)
	if err != nil {
		return nil, false
	}
	if f != nil {
		fst, err := f.Stat()
		if err == nil && os.SameFile(fst, pst) {
			if fst.Size() >= off {
				return nil, false
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return nil, false
			}
			return f, true // truncated in place: read from its start
		}
	}
	nf, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	return nf, true
}

// tailOffset is where the last n lines of f start (a final line without
// a newline counts as one).
func tailOffset(f *os.File, n int) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := st.Size()
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	pos, seen := end, 0
	for pos > 0 {
		size := int64(chunk)
		if pos < size {
			size = pos
		}
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		b := buf[:size]
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' || pos+int64(i) == end-1 {
				continue // the file's own final newline ends the last line
			}
			seen++
			if seen == n {
				return pos + int64(i) + 1, nil
			}
		}
	}
	return 0, nil
}
