package workspaces

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
)

// archiveError is a failure to read the client's archive.
type archiveError struct{ err error }

func (e archiveError) Error() string {
	return "the client stopped sending the archive: " + e.err.Error()
}
func (e archiveError) Unwrap() error { return e.err }

// readErrs marks the archive's read errors as archiveErrors.
type readErrs struct{ r io.Reader }

func (r readErrs) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = archiveError{err}
	}
	return n, err
}

// relayArchive copies archive into the agent's copy_in stream st and
// returns the agent's result. Closing st is a half-close (yamux): the
// agent still answers. The agent may answer before the archive has ended
// (it refused an entry): its answer ends the relay. When the archive
// fails, the agent sees it end without its trailer and drops the copy;
// its answer is awaited (briefly) so that nothing is left on return.
func relayArchive(ctx context.Context, st net.Conn, archive io.Reader) (proto.CopyResult, error) {
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var cr proto.CopyResult
	resc := make(chan error, 1)
	go func() { resc <- proto.ReadLine(st, &cr) }()
	copyc := make(chan error, 1)
	go func() {
		_, err := io.Copy(st, readErrs{archive})
		st.Close()
		copyc <- err
	}()
	answer := func(rerr error) error {
		if rerr == nil && cr.Error != "" {
			return &agentclient.RequestError{Op: proto.OpCopyIn, Message: cr.Error}
		}
		return rerr
	}
	select {
	case cerr := <-copyc:
		if cerr == nil {
			return cr, answer(<-resc)
		}
		select {
		case rerr := <-resc:
			// The agent's refusal explains a broken write.
			if err := answer(rerr); errors.As(err, new(*agentclient.RequestError)) && !errors.As(cerr, new(archiveError)) {
				return cr, err
			}
		case <-time.After(10 * time.Second):
		}
		return cr, cerr
	case rerr := <-resc:
		if err := answer(rerr); err != nil {
			return cr, err
		}
		// The trailer has arrived; the archive's end follows it.
		return cr, <-copyc
	}
}
