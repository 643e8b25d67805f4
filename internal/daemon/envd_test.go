package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/banger-dev/banger/internal/api"
	"github.com/banger-dev/banger/internal/store"
	fspb "github.com/banger-dev/banger/proto/filesystem"
	"github.com/banger-dev/banger/proto/filesystem/filesystempbconnect"
	ppb "github.com/banger-dev/banger/proto/process"
	"github.com/banger-dev/banger/proto/process/processpbconnect"
)

// The daemon's HTTP API hands E2b-Sandbox-Id requests to internal/envd,
// which finds the sandbox through the VM service (exact name or id) and
// reaches the fake VMM's agent (which runs on the host); a stopped or
// unknown VM is refused with E2B's 502.
func TestEnvdThroughDaemon(t *testing.T) {
	h := newHarness(t)
	h.stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close()
	h.cfg.API.Listen = addr
	h.start()
	k, err := h.client.APIKeyCreate(context.Background(), "t")
	must(t, err)
	vm := h.create("dev")
	// envVars given at the sandbox's creation reach its processes.
	st, err := store.Open(context.Background(), h.paths.Database())
	must(t, err)
	must(t, st.PutSandbox(context.Background(), store.Sandbox{VMID: vm.ID, EnvVars: map[string]string{"FROM_CREATE": "yes"}}))
	st.Close()

	do := func(sandbox string) *http.Client {
		return &http.Client{Transport: headers{map[string]string{"X-API-Key": k.Key, "E2b-Sandbox-Id": sandbox}}}
	}
	base := "http://" + addr
	ctx := context.Background()
	for _, id := range []string{"dev", vm.ID} {
		s, err := processpbconnect.NewProcessClient(do(id), base, connect.WithProtoJSON()).Start(ctx,
			connect.NewRequest(&ppb.StartRequest{Process: &ppb.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", "echo hi $FROM_CREATE; exit 2"}}}))
		must(t, err)
		var out string
		var code int32 = -1
		for s.Receive() {
			out += string(s.Msg().GetEvent().GetData().GetStdout())
			if end := s.Msg().GetEvent().GetEnd(); end != nil {
				code = end.GetExitCode()
			}
		}
		if out != "hi yes\n" || code != 2 || s.Err() != nil {
			t.Fatalf("sandbox %s: %q %d %v", id, out, code, s.Err())
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("abc"), 0o644)
	stat, err := filesystempbconnect.NewFilesystemClient(do("dev"), base, connect.WithProtoJSON()).Stat(ctx,
		connect.NewRequest(&fspb.StatRequest{Path: filepath.Join(dir, "f")}))
	if err != nil || stat.Msg.GetEntry().GetSize() != 3 {
		t.Fatalf("stat: %v %v", stat, err)
	}

	get := func(sandbox string) (int, string) {
		resp, err := do(sandbox).Get(base + "/health")
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("dev"); code != 204 {
		t.Fatalf("health: %d", code)
	}
	// A prefix is not a sandbox id.
	if code, body := get("de"); code != 502 || !strings.Contains(body, "was not found") {
		t.Fatalf("prefix: %d %s", code, body)
	}
	must(t, h.call(api.MethodVMStop, api.NameParams{Name: "dev"}, nil))
	if code, body := get("dev"); code != 502 || !strings.Contains(body, "The sandbox dev is not running (it is stopped)") {
		t.Fatalf("stopped: %d %s", code, body)
	}
}

type headers struct{ h map[string]string }

func (h headers) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}
