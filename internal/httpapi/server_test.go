package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/banger-dev/banger/internal/store"
)

func decodeAs[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

// wantError checks an E2B error body: {"code": status, "message": …}.
func wantError(t *testing.T, status int, body string, code int, part string) {
	t.Helper()
	if status != code {
		t.Fatalf("status %d, want %d (body %s)", status, code, body)
	}
	e := decodeAs[apiError](t, body)
	if e.Code != code || !strings.Contains(e.Message, part) {
		t.Fatalf("error %+v, want code %d and a message with %q", e, code, part)
	}
}

func TestAuth(t *testing.T) {
	r := newRig(t)
	st, body := r.doKey("", "GET", "/v2/sandboxes", "")
	wantError(t, st, body, 401, "Missing API key")
	st, body = r.doKey("bgr_wrong", "GET", "/v2/sandboxes", "")
	wantError(t, st, body, 401, "Invalid API key")
	st, body = r.doKey(strings.ToUpper(r.key), "GET", "/templates", "")
	wantError(t, st, body, 401, "Invalid API key")
	if st, body := r.do("GET", "/v2/sandboxes", ""); st != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("with the key: %d %s", st, body)
	}
	// every route needs it, the unknown ones too
	for _, p := range []string{"/openapi.json", "/banger/images", "/nope", "/sandboxes/x"} {
		if st, _ := r.doKey("", "GET", p, ""); st != 401 {
			t.Errorf("GET %s without a key: %d", p, st)
		}
	}
}

func TestEnvdRouting(t *testing.T) {
	r := newRig(t)
	st, body := r.do("GET", "/health", "", "E2b-Sandbox-Id", "sb-x")
	wantError(t, st, body, 501, "envd")
	var got *http.Request
	r.build(Deps{Envd: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { got = req; w.WriteHeader(299) })})
	if st, _ := r.do("GET", "/health", "", "E2b-Sandbox-Id", "sb-x"); st != 299 || got == nil || got.URL.Path != "/health" {
		t.Fatalf("envd request: status %d, handler saw %v", st, got)
	}
	// envd requests from the SDK carry the sandbox's access token, not the key
	_, body = r.do("POST", "/sandboxes", `{"templateID":"base"}`)
	sb := decodeAs[sandboxJSON](t, body)
	if sb.EnvdAccessToken == "" {
		t.Fatal("no envdAccessToken")
	}
	got = nil
	if st, _ := r.doKey("", "GET", "/health", "", "E2b-Sandbox-Id", sb.SandboxID, "X-Access-Token", sb.EnvdAccessToken); st != 299 || got == nil {
		t.Fatalf("with the access token: %d", st)
	}
	other := r.vms.add("other", store.StateRunning)
	for _, tc := range [][]string{
		{"E2b-Sandbox-Id", sb.SandboxID, "X-Access-Token", sb.EnvdAccessToken + "x"},
		{"E2b-Sandbox-Id", other.Name, "X-Access-Token", sb.EnvdAccessToken}, // another sandbox's token
		{"E2b-Sandbox-Id", "nope", "X-Access-Token", sb.EnvdAccessToken},
		{"E2b-Sandbox-Id", sb.SandboxID},
		{"X-Access-Token", sb.EnvdAccessToken}, // a token is no key for the control plane
	} {
		if st, _ := r.doKey("", "GET", "/health", "", tc...); st != 401 {
			t.Errorf("%v: status %d, want 401", tc, st)
		}
	}
}

func TestCreate(t *testing.T) {
	r := newRig(t)
	st, body := r.do("POST", "/v2/sandboxes", `{"templateID":"base","timeout":60,"metadata":{"app":"x"},"envVars":{"A":"1"},"autoPause":true,"mcp":null,"volumeMounts":[]}`)
	if st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	sb := decodeAs[sandboxJSON](t, body)
	if !strings.HasPrefix(sb.SandboxID, "sb-") || sb.TemplateID != "base" || sb.EnvdVersion != DefaultEnvdVersion || sb.ClientID == "" {
		t.Fatalf("created %+v", sb)
	}
	vm, err := r.vms.Show(t.Context(), sb.SandboxID)
	if err != nil || vm.State != store.StateRunning || vm.Image != "debian-bookworm" {
		t.Fatalf("the VM: %+v %v", vm, err)
	}
	rec, _ := r.recs.GetSandbox(t.Context(), vm.ID)
	if rec.Metadata["app"] != "x" || rec.EnvVars["A"] != "1" || !rec.AutoPause || !rec.Deadline.Equal(r.now.Add(time.Minute)) {
		t.Fatalf("record %+v", rec)
	}
	// a create that reports no reservation still gets its record
	r.vms.silent = true
	_, body = r.do("POST", "/sandboxes", `{"templateID":"base","timeout":5}`)
	vm3, _ := r.vms.Show(t.Context(), decodeAs[sandboxJSON](t, body).SandboxID)
	if rec, err := r.recs.GetSandbox(t.Context(), vm3.ID); err != nil || !rec.Deadline.Equal(r.now.Add(5*time.Second)) {
		t.Fatalf("record of a silent create: %+v %v", rec, err)
	}
	r.vms.silent = false
	// no timeout: E2B's default
	_, body = r.do("POST", "/sandboxes", `{"templateID":"alpine"}`)
	vm2, _ := r.vms.Show(t.Context(), decodeAs[sandboxJSON](t, body).SandboxID)
	if rec, _ := r.recs.GetSandbox(t.Context(), vm2.ID); !rec.Deadline.Equal(r.now.Add(DefaultTimeout)) || rec.Template != "alpine" {
		t.Fatalf("default timeout: %+v", rec)
	}
}

func TestCreateBadInput(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct {
		body string
		code int
		part string
	}{
		{``, 400, "JSON request body is required"},
		{`{"templateID":`, 400, "bad JSON"},
		{`[1]`, 400, "bad JSON"},
		{`{}`, 400, "templateID is required"},
		{`{"templateID":"base","timeout":-1}`, 400, "timeout -1"},
		{`{"templateID":"base","timeout":86401}`, 400, "timeout 86401"},
		{`{"templateID":"base","metadata":{"a":1}}`, 400, "bad JSON"},
		{`{"templateID":"missing"}`, 404, "not found"},
		{`{"templateID":"base","network":{"allowOut":["bad"]}}`, 400, "not an address"},
		{`{"templateID":"base","network":{"denyOut":"0.0.0.0/0"}}`, 400, "bad JSON"},
		{`{"templateID":"base","metadata":{"x":"` + strings.Repeat("a", MaxJSONBody) + `"}}`, 413, "over"},
	} {
		st, body := r.do("POST", "/sandboxes", tc.body)
		wantError(t, st, body, tc.code, tc.part)
	}
	if n := len(r.vms.vms); n != 0 {
		t.Fatalf("bad creates left %d VMs", n)
	}
	// a boot that fails leaves nothing: no VM, no record
	r.vms.failNext["boot"] = errors.New("qemu died")
	st, body := r.do("POST", "/sandboxes", `{"templateID":"base"}`)
	wantError(t, st, body, 500, "qemu died")
	r.recs.forget(r.vms)
	if len(r.vms.vms) != 0 || len(r.recs.m) != 0 {
		t.Fatalf("a failed create left %v / %v", r.vms.vms, r.recs.m)
	}
	// a record that cannot be written fails the create, and the VM goes
	r.recs.err = errors.New("disk full")
	st, body = r.do("POST", "/sandboxes", `{"templateID":"base"}`)
	wantError(t, st, body, 500, "disk full")
	if len(r.vms.vms) != 0 {
		t.Fatalf("a create whose record failed left %v", r.vms.vms)
	}
}
