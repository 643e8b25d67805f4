package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/banger-dev/banger/internal/api"
)

// TestHTTPAPIOverTheServices: with [api] listen set the daemon serves the
// HTTP API over the same VM service as the socket: a key made over the
// socket works, a sandbox made over HTTP is a VM the socket lists, and
// deleting it over HTTP leaves nothing.
func TestHTTPAPIOverTheServices(t *testing.T) {
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close()
	h.stop()
	h.cfg.API.Listen = addr
	h.start()

	key, err := h.client.APIKeyCreate(context.Background(), "test")
	must(t, err)
	do := func(method, path, body, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("X-API-KEY", key)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		must(t, err)
		return resp.StatusCode, string(b)
	}
	if st, _ := do("GET", "/v2/sandboxes", "", "bgr_wrong"); st != 401 {
		t.Fatalf("wrong key: %d", st)
	}
	st, body := do("POST", "/v2/sandboxes", `{"templateID":"base","metadata":{"k":"v"}}`, key.Key)
	if st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	var sb struct{ SandboxID string }
	must(t, json.Unmarshal([]byte(body), &sb))
	var list []api.VM
	must(t, h.call(api.MethodVMList, struct{}{}, &list))
	if len(list) != 1 || list[0].Name != sb.SandboxID || list[0].State != "running" {
		t.Fatalf("vm.list after an HTTP create: %+v", list)
	}
	if st, body := do("GET", "/v2/sandboxes?metadata=k%3Dv", "", key.Key); st != 200 || !strings.Contains(body, sb.SandboxID) {
		t.Fatalf("list: %d %s", st, body)
	}
	if st, _ := do("DELETE", "/sandboxes/"+sb.SandboxID, "", key.Key); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	h.assertNoTrace(list[0].ID)
	// a revoked key is refused at once
	_, err = h.client.APIKeyDelete(context.Background(), "test")
	must(t, err)
	if st, _ := do("GET", "/v2/sandboxes", "", key.Key); st != 401 {
		t.Fatalf("revoked key: %d", st)
	}
}
