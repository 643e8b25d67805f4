package daemon

import (
	"archive/tar"
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentclient "github.com/banger-dev/banger/internal/agent/client"
	"github.com/banger-dev/banger/internal/agent/proto"
	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/vms"
)

// cpIn sends one file as the CLI does and returns the agent's result.
func (h *harness) cpIn(p api.CopyInParams, name, body string) (proto.CopyResult, error) {
	h.t.Helper()
	var res proto.CopyResult
	conn, err := h.client.Stream(context.Background(), api.MethodVMCopyIn, p, nil, nil)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	_, ioErr := agentclient.WriteArchive(conn, func(tw *agentclient.TarWriter) error {
		must(h.t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o640, Size: int64(len(body))}))
		_, err := tw.Write([]byte(body))
		return err
	})
	must(h.t, ioErr)
	must(h.t, proto.ReadLine(conn, &res))
	return res, nil
}

func TestCopyInAndOut(t *testing.T) {
	root := guestRoot(t)
	h := newHarness(t)
	if _, err := h.cpIn(api.CopyInParams{Name: "ghost", Path: "/root", Base: "f"}, "f", "x"); !isCode(err, api.CodeNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
	h.create("dev")
	res, err := h.cpIn(api.CopyInParams{Name: "dev", Path: "/root", Base: "notes.txt"}, "notes.txt", "hello")
	if err != nil || res.Error != "" || res.Bytes != 5 {
		t.Fatalf("copy in: %+v %v", res, err)
	}
	st, err := os.Stat(filepath.Join(root, "root", "notes.txt"))
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("guest file: %v %v", st, err)
	}
	// A missing parent is the call's error, before any byte is sent.
	if _, err := h.cpIn(api.CopyInParams{Name: "dev", Path: "/root/no/such", Base: "f"}, "f", "x"); !isCode(err, api.CodeInvalid) ||
		!strings.Contains(err.Error(), "parent directory") {
		t.Errorf("missing parent: %v", err)
	}
	if _, err := h.cpIn(api.CopyInParams{Name: "dev", Path: "relative", Base: "f"}, "f", "x"); !isCode(err, api.CodeInvalid) {
		t.Errorf("relative path: %v", err)
	}

	// And back out.
	conn, err := h.client.Stream(context.Background(), api.MethodVMCopyOut, api.CopyOutParams{Name: "dev", Path: "/root/notes.txt"}, nil, nil)
	must(t, err)
	got := map[string]string{}
	_, err = agentclient.ReadArchive(bufio.NewReader(conn), func(hd *tar.Header, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[hd.Name] = string(b)
		return err
	})
	conn.Close()
	if err != nil || got["notes.txt"] != "hello" || len(got) != 1 {
		t.Fatalf("copy out: %v %v", got, err)
	}
	_, err = h.client.Stream(context.Background(), api.MethodVMCopyOut, api.CopyOutParams{Name: "dev", Path: "/root/missing"}, nil, nil)
	if !isCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), "/root/missing: no such file or directory in the guest") {
		t.Errorf("missing source: %v", err)
	}

	// A stopped VM: the error says how to start it.
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	_, err = h.client.Stream(context.Background(), api.MethodVMCopyOut, api.CopyOutParams{Name: "dev", Path: "/root/notes.txt"}, nil, nil)
	if !isCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "banger vm start dev") {
		t.Errorf("stopped VM: %v", err)
	}
}

func TestLogs(t *testing.T) {
	h := newHarness(t)
	vm := h.create("dev")
	read := func(p api.LogsParams) string {
		t.Helper()
		conn, err := h.client.Stream(context.Background(), api.MethodVMLogs, p, nil, nil)
		must(t, err)
		defer conn.Close()
		b, err := io.ReadAll(conn)
		must(t, err)
		return string(b)
	}
	if got := read(api.LogsParams{Name: "dev"}); got != "fake console line 1\nfake console line 2\n" {
		t.Errorf("log %q", got)
	}
	if got := read(api.LogsParams{Name: "dev", Tail: 1}); got != "fake console line 2\n" {
		t.Errorf("tail 1: %q", got)
	}
	if got := read(api.LogsParams{Name: "dev", Tail: 5}); got != "fake console line 1\nfake console line 2\n" {
		t.Errorf("tail 5: %q", got)
	}
	if err := h.call(api.MethodVMLogs, api.LogsParams{Name: "dev", Tail: -1}, nil); !isCode(err, api.CodeInvalid) {
		t.Errorf("negative tail: %v", err)
	}

	// Following: appended lines arrive; a truncated (new boot) log is
	// read from its start; leaving ends it.
	t.Cleanup(vms.SetLogPollForTest(10 * time.Millisecond))
	conn, err := h.client.Stream(context.Background(), api.MethodVMLogs, api.LogsParams{Name: "dev", Follow: true, Tail: 1}, nil, nil)
	must(t, err)
	defer conn.Close()
	br := bufio.NewReader(conn)
	expect := func(want string) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("followed %q, %v; want %q", line, err, want)
		}
	}
	expect("fake console line 2\n")
	logPath := filepath.Join(h.paths.VMDir(vm.ID), "console.log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	f.WriteString("appended\n")
	f.Close()
	expect("appended\n")
	must(t, os.WriteFile(logPath, []byte("new boot\n"), 0o600))
	expect("new boot\n")
}
