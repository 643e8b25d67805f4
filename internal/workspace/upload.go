package workspace

import (
	"cmp"
	"context"
	"io"
	"os"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/api"
)

// Spec is what the daemon is told about the import of p to guest; the
// archive itself travels as the call's request body (see Stream).
func (p *Plan) Spec(guest string) api.WorkspaceSpec {
	top := p.Top()
	return api.WorkspaceSpec{GuestPath: guest, Commit: top.Commit, Branch: top.Branch,
		Files: len(p.Files()), Summary: p.Summary()}
}

// Send writes the plan's archive to w as the daemon relays it to the
// agent's copy_in: the tar stream, then the trailer that says it is
// complete. The packs are built in a temporary host directory, removed
// before Send returns. A failed Send has written no trailer, so what
// reached the guest is dropped.
func (p *Plan) Send(ctx context.Context, w io.Writer) error {
	tmp, err := os.MkdirTemp("", "banger-workspace-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fillErr, ioErr := agentclient.WriteArchive(w, func(tw *agentclient.TarWriter) error { return p.Archive(ctx, tw, tmp) })
	return cmp.Or(fillErr, ioErr)
}

// Stream is the plan's archive (as Send writes it) as a reader, built in
// the background as it is read. Close stops the build (git included) and
// waits for it, so that no temporary file outlives it; a build error is
// the reader's.
func (p *Plan) Stream(ctx context.Context) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	s := &archiveStream{pr: pr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		pw.CloseWithError(p.Send(ctx, pw))
	}()
	return s
}

type archiveStream struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *archiveStream) Read(b []byte) (int, error) { return s.pr.Read(b) }

func (s *archiveStream) Close() error {
	s.cancel()
	s.pr.Close()
	<-s.done
	return nil
}
