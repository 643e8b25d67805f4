package rpc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
)

// sumHandler hashes the request body, reporting progress as it reads,
// and echoes the body back as the response body.
func sumHandler(ctx context.Context, c *rpc.Call) (any, error) {
	h := sha256.New()
	body, err := io.ReadAll(io.TeeReader(c.Body(), h))
	if err != nil {
		return nil, err
	}
	c.Progress("read", fmt.Sprint(len(body)))
	if _, err := c.Write(body); err != nil {
		return nil, err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

func TestBodiesBothWays(t *testing.T) {
	dial := serve(t, map[string]rpc.Handler{"sum": sumHandler})
	for _, size := range []int{0, 1, 3 << 20} { // empty, tiny, several chunks
		in := make([]byte, size)
		for i := range in {
			in[i] = byte(rand.Uint32())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := rpc.Start(ctx, dial, "sum", nil)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		c.Body = &out
		c.SendBody(bytes.NewReader(in))
		var got string
		var stages []string
		err = c.Wait(ctx, func(p api.Progress) { stages = append(stages, p.Message) }, &got)
		c.Close()
		cancel()
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if want := fmt.Sprintf("%x", sha256.Sum256(in)); got != want {
			t.Errorf("size %d: daemon hashed %s, want %s", size, got, want)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Errorf("size %d: response body has %d bytes, want the %d sent", size, out.Len(), len(in))
		}
		if len(stages) != 1 || stages[0] != fmt.Sprint(size) {
			t.Errorf("size %d: progress %v", size, stages)
		}
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(f.n, len(p))
	f.n -= n
	return n, nil
}

func TestLocalBodyErrorEndsTheCall(t *testing.T) {
	handlerErr := make(chan error, 1)
	dial := serve(t, map[string]rpc.Handler{"eat": func(ctx context.Context, c *rpc.Call) (any, error) {
		_, err := io.Copy(io.Discard, c.Body())
		handlerErr <- err
		return nil, err
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "eat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SendBody(&failingReader{n: 100 << 10})
	if err := c.Wait(ctx, nil, nil); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Wait = %v, want the local read error", err)
	}
	if err := <-handlerErr; err == nil || !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "request body") {
		t.Fatalf("handler's body read = %v, want a truncated-body error", err)
	}
}

func TestResponseBodyWithoutSinkFails(t *testing.T) {
	dial := serve(t, map[string]rpc.Handler{"dl": func(ctx context.Context, c *rpc.Call) (any, error) {
		_, err := c.Write([]byte("data"))
		return nil, err
	}})
	err := call(t, dial, "dl", nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "unexpected body chunk") {
		t.Fatalf("err = %v", err)
	}
}

func TestOversizedChunkRefused(t *testing.T) {
	dial := serve(t, map[string]rpc.Handler{"eat": func(ctx context.Context, c *rpc.Call) (any, error) {
		_, err := io.Copy(io.Discard, c.Body())
		return nil, err
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "eat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0xff, 0xff, 0xff, 0xff}) // a 4 GiB chunk
	err = c.Wait(ctx, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("err = %v, want the chunk limit", err)
	}
}
