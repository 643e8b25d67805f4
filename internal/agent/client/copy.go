package client

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/banger-dev/banger/internal/agent/proto"
)

// TarWriter is the archive a CopyIn fill function writes; it counts the
// entries for the trailer that tells the agent the copy is complete.
type TarWriter struct {
	*tar.Writer
	entries int64
}

// WriteHeader starts an entry.
func (w *TarWriter) WriteHeader(h *tar.Header) error {
	w.entries++
	return w.Writer.WriteHeader(h)
}

// CopyIn streams the archive that fill writes into p.Dir in the guest and
// returns the agent's account of it. Cancelling ctx aborts the copy; the
// agent then removes a fresh copy's partial tree. An error the agent
// reports (a refused entry, a full disk) is a *RequestError.
func (c *Client) CopyIn(ctx context.Context, p proto.CopyInParams, fill func(*TarWriter) error) (proto.CopyResult, error) {
	var res proto.CopyResult
	st, _, err := c.Open(ctx, proto.OpCopyIn, p)
	if err != nil {
		return res, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// The agent answers early when it fails: the reply is read while the
	// archive is still being written.
	resc := make(chan error, 1)
	go func() { resc <- proto.ReadLine(st, &res) }()
	fillErr, ioErr := writeArchive(st, fill)
	if fillErr != nil || ioErr != nil {
		// Half-close: the agent sees the archive end without its trailer
		// and removes what it extracted; its reply is awaited (briefly)
		// so that nothing is left when CopyIn returns.
		st.Close()
		select {
		case rerr := <-resc:
			if fillErr == nil {
				return res, replyError(ctx, res, rerr, ioErr)
			}
		case <-time.After(10 * time.Second):
			st.SetDeadline(time.Unix(1, 0))
			<-resc
		}
		if fillErr != nil {
			return res, fillErr
		}
		return res, copyError(ctx, ioErr)
	}
	return res, replyError(ctx, res, <-resc, nil)
}

// writeArchive writes the tar stream and the trailer. fillErr is the fill
// function's own failure; ioErr a failure to send.
func writeArchive(st io.Writer, fill func(*TarWriter) error) (fillErr, ioErr error) {
	bw := bufio.NewWriterSize(sendWriter{st}, 256<<10)
	tw := &TarWriter{Writer: tar.NewWriter(bw)}
	if err := fill(tw); err != nil {
		if errors.Is(err, errSend) {
			return nil, err
		}
		return err, nil
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := proto.WriteLine(bw, proto.CopyTrailer{Done: true, Entries: tw.entries}); err != nil {
		return nil, err
	}
	return nil, bw.Flush()
}

// errSend marks a failure to send, as opposed to a fill function's own.
var errSend = errors.New("send archive")

type sendWriter struct{ w io.Writer }

func (s sendWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errSend, err)
	}
	return n, err
}

// replyError prefers what the agent said over what the host saw: a
// broken write is usually the consequence of the agent's refusal.
func replyError(ctx context.Context, res proto.CopyResult, rerr, werr error) error {
	switch {
	case rerr == nil && res.Error != "":
		return &RequestError{Op: proto.OpCopyIn, Message: res.Error}
	case rerr == nil && werr == nil:
		return nil
	case werr != nil:
		return copyError(ctx, werr)
	default:
		return copyError(ctx, fmt.Errorf("read reply: %w", rerr))
	}
}

func copyError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re *RequestError
	if errors.As(err, &re) {
		return err
	}
	return fmt.Errorf("agent %s: %w", proto.OpCopyIn, err)
}
