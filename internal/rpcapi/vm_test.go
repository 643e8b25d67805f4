package rpcapi_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/progress"
	"github.com/banger-dev/banger/internal/rpc"
	"github.com/banger-dev/banger/internal/rpcapi"
	"github.com/banger-dev/banger/internal/vms"
)

func serve(t *testing.T, hs rpcapi.Handlers) func(context.Context) (net.Conn, error) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := rpc.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&rpc.Server{Handlers: hs, Log: slog.New(slog.DiscardHandler)}).Serve(ctx, l)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		l.Close()
		<-done
	})
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
}

// Stream sends the session's result, then hands the raw connection —
// bytes the client sent right behind its request included — and the
// caller's pid to the session; progress reported while opening reaches
// the client first.
func TestStreamUpgradesIntoTheSession(t *testing.T) {
	pids := make(chan int, 1)
	open := func(ctx context.Context, p api.NameParams, r progress.Reporter) (*vms.Session, error) {
		progress.Stage(r, "boot", "opening "+p.Name)
		return vms.NewSessionForTest(api.VM{Name: p.Name}, func(c vms.Client) {
			pids <- c.PeerPID
			go func() {
				defer c.Conn.Close()
				line, _ := bufio.NewReader(c.R).ReadString('\n')
				io.WriteString(c.Conn, strings.ToUpper(line))
			}()
		}, func() { t.Error("aborted") }), nil
	}
	dial := serve(t, rpcapi.Handlers{"x.open": rpcapi.Stream(open)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "x.open", api.NameParams{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var stages []string
	var vm api.VM
	if err := c.Wait(ctx, func(p api.Progress) { stages = append(stages, p.Message) }, &vm); err != nil {
		t.Fatal(err)
	}
	if vm.Name != "dev" || len(stages) != 1 || stages[0] != "opening dev" {
		t.Fatalf("result %+v, progress %v", vm, stages)
	}
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "HELLO\n" {
		t.Fatalf("stream %q %v", b, err)
	}
	if pid := <-pids; pid != os.Getpid() {
		t.Fatalf("peer pid %d, want %d", pid, os.Getpid())
	}
}

// A session that cannot be opened is the call's error; nothing upgrades.
func TestStreamOpenErrorIsTheCallsError(t *testing.T) {
	open := func(ctx context.Context, p api.NameParams, _ progress.Reporter) (*vms.Session, error) {
		return nil, &api.Error{Code: api.CodeConflict, Message: "vm dev is stopped"}
	}
	dial := serve(t, rpcapi.Handlers{"x.open": rpcapi.Stream(open)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Start(ctx, dial, "x.open", api.NameParams{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ae *api.Error
	if err := c.Wait(ctx, nil, nil); !errors.As(err, &ae) || ae.Code != api.CodeConflict {
		t.Fatalf("err = %v", err)
	}
}
