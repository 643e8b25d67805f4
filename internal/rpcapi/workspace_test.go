package rpcapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/workspaces"
)

// guests knows one running VM, dev, and no agent.
type guests struct{}

func (guests) Lookup(_ context.Context, name string) (workspaces.VM, error) {
	if name != "dev" {
		return workspaces.VM{}, &api.Error{Code: api.CodeNotFound, Message: "no vm " + name}
	}
	return workspaces.VM{ID: "1", Name: "dev", State: "running"}, nil
}
func (guests) Agent(context.Context, string) (workspaces.Agent, error) {
	return nil, errors.New("no agent here")
}
func (guests) Running(id string) bool { return id == "1" }

func TestWorkspaceHandlers(t *testing.T) {
	s := workspaces.New(workspaces.Deps{Guests: guests{}})
	// Export's exec stream is the VM service's (daemon tests cover it).
	dial := serve(t, rpcapi.WorkspaceHandlers(s, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// An error before the archive is read reaches the client whole,
	// while the client is still sending a large body.
	c, err := rpc.Start(ctx, dial, api.MethodWorkspacePrepare, api.WorkspacePrepareParams{Name: "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	c.SendBody(bytes.NewReader(make([]byte, 8<<20)))
	err = c.Wait(ctx, nil, nil)
	c.Close()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeNotFound || ae.Message != "no vm ghost" {
		t.Errorf("prepare into an unknown VM: %v", err)
	}

}

// LazyBody leaves the disconnect watch on until the body is read: a
// client that leaves first cancels the call's context.
func TestLazyBodyKeepsTheDisconnectWatch(t *testing.T) {
	cancelled, read := make(chan bool, 1), make(chan string, 1)
	dial := serve(t, rpcapi.Handlers{
		"wait": func(ctx context.Context, c *rpc.Call) (any, error) {
			body := rpcapi.LazyBody(c) // not read yet
			select {
			case <-ctx.Done():
				cancelled <- true
			case <-time.After(5 * time.Second):
				cancelled <- false
			}
			_ = body
			return nil, nil
		},
		"read": func(ctx context.Context, c *rpc.Call) (any, error) {
			b, err := io.ReadAll(rpcapi.LazyBody(c))
			read <- string(b)
			return len(b), err
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "wait", nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if !<-cancelled {
		t.Error("the client left and the call was not cancelled")
	}
	c, err = rpc.Start(ctx, dial, "read", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SendBody(strings.NewReader("archive"))
	var n int
	if err := c.Wait(ctx, nil, &n); err != nil || n != 7 || <-read != "archive" {
		t.Errorf("read: %d %v", n, err)
	}
	c.Close()
}
