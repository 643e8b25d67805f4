package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/client"
)

// dial-stdio greets with its protocol version, then passes bytes both
// ways and ends when the daemon closes.
func TestDialStdioGreetsThenSplices(t *testing.T) {
	ours, daemon := net.Pipe()
	inR, inW := io.Pipe()
	var out bytes.Buffer
	opts := &dialStdioOptions{IO: &iostreams{In: inR, Out: &out, Err: io.Discard},
		Dial: func(_ context.Context, start bool) (net.Conn, error) {
			if !start {
				t.Error("dial-stdio without --no-start did not ask for a start")
			}
			return ours, nil
		}}
	go func() {
		inW.Write([]byte("request\n"))
		line, _ := bufio.NewReader(daemon).ReadString('\n')
		daemon.Write([]byte("answer to " + line))
		daemon.Close()
	}()
	done := make(chan error)
	go func() { done <- dialStdioRun(context.Background(), opts) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dial-stdio did not end when the daemon closed")
	}
	hello, rest, _ := strings.Cut(out.String(), "\n")
	var h client.Hello
	if err := json.Unmarshal([]byte(hello), &h); err != nil || h.Banger != client.HelloMagic || h.APIVersion != api.Version {
		t.Fatalf("greeting %q (%v)", hello, err)
	}
	if rest != "answer to request\n" {
		t.Fatalf("spliced %q", rest)
	}
}

func TestDialStdioExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{client.ErrNotRunning, client.DialStdioNotRunning},
		{errors.New("bangerd exited during start-up: bad config"), client.DialStdioStartFailed},
	} {
		var errb bytes.Buffer
		opts := &dialStdioOptions{IO: &iostreams{In: strings.NewReader(""), Out: io.Discard, Err: &errb}, NoStart: true,
			Dial: func(context.Context, bool) (net.Conn, error) { return nil, tc.err }}
		err := dialStdioRun(context.Background(), opts)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != tc.code || !strings.Contains(errb.String(), tc.err.Error()) {
			t.Errorf("%v: %v, stderr %q", tc.err, err, errb.String())
		}
	}
}
