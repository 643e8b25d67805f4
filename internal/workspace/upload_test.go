package workspace

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// Stream is Send's archive, read as it is built; closing it early stops
// the build, and a cancelled context fails it (no trailer is written).
func TestStreamIsTheSentArchive(t *testing.T) {
	r := newRepo(t)
	r.write("a.txt", "alpha\n", 0o644)
	r.write("big.bin", string(bytes.Repeat([]byte("x"), 4<<20)), 0o644)
	r.commitAll("one")
	p := r.plan(Options{})
	var sent bytes.Buffer
	if err := p.Send(testCtx(t), &sent); err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndex(sent.Bytes(), []byte(`{"done":true,"entries":`)); i < sent.Len()-64 {
		t.Fatalf("no trailer at the end of the archive")
	}
	s := p.Stream(testCtx(t))
	streamed, err := io.ReadAll(s)
	s.Close()
	if err != nil || !bytes.Equal(streamed, sent.Bytes()) {
		t.Errorf("stream: %d bytes, %v; Send wrote %d", len(streamed), err, sent.Len())
	}

	// Closed after one read: Close returns once the build has stopped.
	s = p.Stream(testCtx(t))
	s.Read(make([]byte, 512))
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the whole archive")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s = p.Stream(ctx)
	defer s.Close()
	if b, err := io.ReadAll(s); err == nil || bytes.Contains(b, []byte(`{"done":true`)) {
		t.Errorf("a cancelled build: %d bytes, %v", len(b), err)
	}
}
